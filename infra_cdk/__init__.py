"""Infrastructure: the CDK app (deployed to AWS) and local/, the local cloud runner."""
