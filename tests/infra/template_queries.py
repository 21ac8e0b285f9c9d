"""Questions the infra tests ask of a synthesized template."""

from __future__ import annotations

from typing import Any

from aws_cdk.assertions import Template


def statements(template: Template, role_logical_prefix: str) -> list[dict[str, Any]]:
    """Every policy statement attached to the role(s) whose logical id starts so."""
    found = []
    for policy in template.find_resources("AWS::IAM::Policy").values():
        roles = policy["Properties"]["Roles"]
        if any(r["Ref"].startswith(role_logical_prefix) for r in roles):
            found += policy["Properties"]["PolicyDocument"]["Statement"]
    return found


def actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)
