"""Least privilege, checked: every AWS request the code makes is allowed by the
synthesized policies of the role it runs as.

Requests come from tests/infra/iam_principals.py (recorded calls of the functions, the
state machine's definition); the policies from the template; the evaluation from
tests/infra/iam_policy.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from moto import mock_aws

from functions.api import dependencies
from functions.api.handler import lambda_handler as api_handler
from infra_cdk.local.gateway import LambdaContext, http_api_event
from infra_cdk.local.resources import ResourceNames, provision
from tests.infra.aws_calls import recording, usage_of
from tests.infra.iam_policy import allows
from tests.infra.iam_principals import principals


def test_the_readiness_probes_are_allowed_to_the_api_role(
    template_json: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """On AWS, /readyz answers 503 when either probe is refused."""
    names = ResourceNames()
    with mock_aws():
        provision(names)
        for variable, value in names.environment().items():
            monkeypatch.setenv(variable, value)
        dependencies.reset()
        with recording() as calls:
            answer = api_handler(http_api_event("GET", "https://api.local/readyz"), LambdaContext())
        dependencies.reset()
    assert answer["statusCode"] == 200
    api = principals(template_json, usage_of(calls))["api"]
    probes = [r for r in api.requests if r.action.startswith(("dynamodb:", "s3:"))]
    assert probes
    assert [str(r) for r in probes if not allows(api.statements, r)] == []
