"""The CDK app: only what is deployed to AWS. The local cloud (local_cloud/) runs this
stack on one machine; it imports this package, never the other way round (infra_cdk.local
only forwards the old `python -m infra_cdk.local` to it, by module name)."""
