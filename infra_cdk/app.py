"""`python -m infra_cdk.app` (or `cdk synth` from the repository root) synthesizes the stack.

Configuration comes from CDK context or PRTRACE_* variables (infra_cdk.config);
PRTRACE_LAMBDA_DEPS=skip stages an empty dependency layer (local cloud and tests).
"""

from __future__ import annotations

import os
from typing import Any

from aws_cdk import App, Environment, Validations
from cdk_nag import AwsSolutionsChecks

from infra_cdk.config import BuildSettings, StackConfig
from infra_cdk.stack import PrtraceStack

# Behaviour flags the stack is written for (the CLI also reads them from cdk.json; a plain
# `python -m infra_cdk.app` does not, so they live here).
FEATURE_FLAGS: dict[str, Any] = {
    "@aws-cdk/aws-iam:minimizePolicies": True,
    "@aws-cdk/core:checkSecretUsage": True,
    "@aws-cdk/aws-lambda:recognizeLayerVersion": True,
    # Server access logs are delivered through a bucket policy, not the legacy log ACL.
    "@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy": True,
}


def build_app(
    context: dict[str, Any] | None = None,
    *,
    build_deps: bool | None = None,
    outdir: str | None = None,
) -> App:
    app = App(context={**FEATURE_FLAGS, **(context or {})}, outdir=outdir)
    known = {name: app.node.try_get_context(name) for name in StackConfig.model_fields}
    config = StackConfig.resolve({k: v for k, v in known.items() if v is not None})
    if build_deps is None:
        build_deps = BuildSettings.from_env().lambda_deps == "build"
    PrtraceStack(
        app,
        config.prefix,
        config=config,
        build_deps=build_deps,
        env=Environment(
            account=os.environ.get("CDK_DEFAULT_ACCOUNT"),
            region=os.environ.get("CDK_DEFAULT_REGION"),
        ),
        description="prtrace: capture, verify, test and score bug-fixing sessions",
    )
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app


def main() -> None:
    build_app().synth()


if __name__ == "__main__":
    main()
