"""The local cloud: the operators' stack (the CDK app in infra_cdk/) running on one
machine, inside moto's AWS emulator, with no Docker engine and no cloud account.
`python -m local_cloud` (`make local`, or `make deploy-local` to deploy with the real CDK
CLI) starts it and prints its endpoints.

It reads the CDK app and never the other way round: infra_cdk/ holds only what is
deployed. Its parts, each in one module:

- cloud.py: the runner: starts the emulator, deploys the stack, wires up the rest, stops it;
  __main__.py: the command in the foreground.
- emulator.py: moto's server on the loopback, and clients that name its endpoint.
- moto_patches.py: every change made to moto's own code, each with its undo;
  fn_sub.py: the `Fn::Sub` rewrite one of them installs.
- assembly.py: synthesizes the stack and reads its cloud assembly.
- deploy.py: deploys it through CloudFormation as `cdk deploy` does;
  cdk_cli.py: deploys it with the real CDK CLI instead.
- cdk_bridge.py: CloudFormation models for what moto cannot model (secrets, alarms, KMS
  keys, the HTTP API), and the QA image registered in the emulator's ECR.
- lambda_runtime.py + lambda_worker.py: Lambda invocations in warm worker processes.
- http_gateway.py (routes, authorizer, events) on http_server.py (HTTP/1.1 on h11);
  gateway.py: the API Gateway events; static_site.py: the trace viewer's files.
- ecs.py: ECS RunTask, the QA task run under the local sandbox.
- stepfunctions.py: deployed state machines run by moto's interpreter, and their
  execution-end events.
- resources.py: the stateful resources alone, for tests that drive handlers in-process.
"""
