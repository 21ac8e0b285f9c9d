"""The old name of the local cloud's command: `python -m infra_cdk.local` runs
`python -m local_cloud`, which is where the local cloud lives now (outside the CDK app,
which holds only what is deployed)."""
