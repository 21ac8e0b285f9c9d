from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App
from aws_cdk.assertions import Template

from infra_cdk.app import build_app

os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")

# The tasks' gateway prefix lists, set as an operator sets them (ids in the AWS shape).
PREFIX_LISTS = {"s3_prefix_list_id": "pl-63a5400a", "dynamodb_prefix_list_id": "pl-02cd2c6b"}


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> tuple[App, Path]:
    """One synth of the operators' stack (cdk-nag runs during it) for the whole session."""
    outdir = tmp_path_factory.mktemp("cdk.out")
    app = build_app({"stage": "test", **PREFIX_LISTS}, build_deps=False, outdir=str(outdir))
    app.synth()
    return app, outdir


@pytest.fixture(scope="session")
def template(synthesized: tuple[App, Path]) -> Template:
    app, _ = synthesized
    stack = app.node.find_child("prtrace-test")
    return Template.from_stack(stack)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def template_json(template: Template) -> dict[str, Any]:
    return template.to_json()  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def template_file(synthesized: tuple[App, Path]) -> Path:
    return synthesized[1] / "prtrace-test.template.json"
