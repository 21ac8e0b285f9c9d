"""Questions the infra tests ask of a synthesized template."""

from __future__ import annotations

import json
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


def one(template: Template, resource_type: str) -> tuple[str, dict[str, Any]]:
    """The logical id and body of the template's only resource of this type."""
    found = template.find_resources(resource_type)
    assert len(found) == 1, f"expected one {resource_type}, found {list(found)}"
    return next(iter(found.items()))


def dashboard_widgets(template: Template) -> list[dict[str, Any]]:
    """The widgets of the one dashboard, its body's references written as `<ref>`."""
    _, dashboard = one(template, "AWS::CloudWatch::Dashboard")
    body = dashboard["Properties"]["DashboardBody"]
    parts = body["Fn::Join"][1] if isinstance(body, dict) else [body]
    text = "".join(part if isinstance(part, str) else "<ref>" for part in parts)
    return list(json.loads(text)["widgets"])
