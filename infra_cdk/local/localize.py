"""The one change the local deployment makes to the operators' template.

moto models no HTTP API (AWS::ApiGatewayV2::*): it skips those resources and then fails on
anything that refers to them. The local gateway serves them instead, straight from the
original template, so here they are removed and references to them become the values the
local gateway stands for (the API endpoint is the gateway's URL). The operations dashboard
is removed too: its alarm widget names the alarms by ARN, and moto skips alarms, so it
cannot resolve them (nothing refers to the dashboard). Nothing else changes.
"""

from __future__ import annotations

import copy
import re
from typing import Any, Final

SERVED_BY_LOCAL_GATEWAY: Final = frozenset(
    {
        "AWS::ApiGatewayV2::Api",
        "AWS::ApiGatewayV2::Integration",
        "AWS::ApiGatewayV2::Route",
        "AWS::ApiGatewayV2::Authorizer",
        "AWS::ApiGatewayV2::Stage",
    }
)


# Not deployed locally at all (see above).
NOT_DEPLOYED_LOCALLY: Final = frozenset({"AWS::CloudWatch::Dashboard"})

# moto's CloudFormation skips these too; the deployer creates them through their own API
# first (from the same properties) and references resolve to what it created.
PROVISIONED_BEFORE_THE_STACK: Final = frozenset({"AWS::SecretsManager::Secret"})


def localize_template(
    template: dict[str, Any], *, gateway_url: str, provisioned: dict[str, str] | None = None
) -> dict[str, Any]:
    """`provisioned`: logical id -> physical id (ARN) of resources created beforehand."""
    provisioned = provisioned or {}
    local = copy.deepcopy(template)
    resources: dict[str, Any] = local["Resources"]
    removed = {
        logical_id
        for logical_id, resource in resources.items()
        if resource["Type"] in SERVED_BY_LOCAL_GATEWAY | NOT_DEPLOYED_LOCALLY
        or logical_id in provisioned
    }
    for logical_id in removed:
        del resources[logical_id]
    gateway_id = gateway_url.split("//", 1)[-1]

    def stand_in(logical_id: str, attribute: str | None) -> str:
        if logical_id in provisioned:
            return provisioned[logical_id]
        if attribute == "ApiEndpoint":
            return gateway_url
        return f"local-{logical_id}" if attribute is None else f"local-{logical_id}-{attribute}"

    def rewrite(node: Any) -> Any:
        if isinstance(node, dict) and sub_with_dollar_dollar(node):
            return rewrite(sub_as_join(*node["Fn::Sub"]))
        if isinstance(node, dict):
            if set(node) == {"Ref"} and node["Ref"] in removed:
                return stand_in(node["Ref"], None)
            if set(node) == {"Fn::GetAtt"} and node["Fn::GetAtt"][0] in removed:
                return stand_in(node["Fn::GetAtt"][0], node["Fn::GetAtt"][1])
            if "Fn::Sub" in node and isinstance(node["Fn::Sub"], str):
                return {"Fn::Sub": _sub_text(node["Fn::Sub"], removed, gateway_id)}
            return {key: rewrite(value) for key, value in node.items()}
        if isinstance(node, list):
            return [rewrite(item) for item in node]
        return node

    for resource in resources.values():
        depends = resource.get("DependsOn")
        if isinstance(depends, list):
            resource["DependsOn"] = [d for d in depends if d not in removed]
        elif isinstance(depends, str) and depends in removed:
            del resource["DependsOn"]
    local["Resources"] = rewrite(resources)
    if "Outputs" in local:
        local["Outputs"] = rewrite(local["Outputs"])
    return local


def _sub_text(text: str, removed: set[str], gateway_id: str) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1).split(".")[0]
        return f"local-{name}" if name in removed else match.group(0)

    return re.sub(r"\$\{([A-Za-z0-9.]+)\}", replace, text)


_PLACEHOLDER = re.compile(r"\$\{([^}!][^}]*)\}")


def sub_with_dollar_dollar(node: dict[str, Any]) -> bool:
    """moto's Fn::Sub substitutes with string.Template, which turns `$$` into `$`: the
    Step Functions context object (`$$.State…`) would not survive it."""
    sub = node.get("Fn::Sub")
    return isinstance(sub, list) and len(sub) == 2 and "$$" in sub[0]


def sub_as_join(text: str, mappings: dict[str, Any]) -> dict[str, Any]:
    """The same value as CloudFormation's Fn::Sub, spelled as Fn::Join parts."""
    parts: list[Any] = []
    position = 0
    for match in _PLACEHOLDER.finditer(text):
        parts.append(text[position : match.start()])
        name = match.group(1)
        if name in mappings:
            parts.append(mappings[name])
        elif "." in name and not name.startswith("AWS::"):
            parts.append({"Fn::GetAtt": name.split(".", 1)})
        else:
            parts.append({"Ref": name})
        position = match.end()
    parts.append(text[position:].replace("${!", "${"))
    return {"Fn::Join": ["", [part for part in parts if part != ""]]}
