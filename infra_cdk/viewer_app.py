"""`python -m infra_cdk.viewer_app` (`make deploy-viewer`) synthesizes the viewer's stack:
deploy it after the prtrace stack of the same stage, whose API and bucket it imports."""

from __future__ import annotations

import os
from typing import Any

from aws_cdk import App, CfnOutput, Environment, Validations
from cdk_nag import AwsSolutionsChecks

from infra_cdk.app import FEATURE_FLAGS
from infra_cdk.config import StackConfig
from infra_cdk.viewer import ViewerStack


def build_viewer_app(context: dict[str, Any] | None = None, *, outdir: str | None = None) -> App:
    app = App(context={**FEATURE_FLAGS, **(context or {})}, outdir=outdir)
    known = {name: app.node.try_get_context(name) for name in StackConfig.model_fields}
    config = StackConfig.resolve({k: v for k, v in known.items() if v is not None})
    stack = ViewerStack(
        app,
        f"{config.prefix}-viewer",
        config=config,
        env=Environment(
            account=os.environ.get("CDK_DEFAULT_ACCOUNT"),
            region=os.environ.get("CDK_DEFAULT_REGION"),
        ),
        description="prtrace trace viewer: static files on S3 behind CloudFront",
    )
    CfnOutput(stack, "ViewerUrl", value=stack.url)
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app


def main() -> None:
    build_viewer_app().synth()


if __name__ == "__main__":
    main()
