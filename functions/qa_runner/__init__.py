"""The QA container task (ECS Fargate; locally the same entry point under the bwrap backend)."""
