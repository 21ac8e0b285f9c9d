"""CloudFormation's `Fn::Sub` with a `$$` in its text, spelled as the equivalent
`Fn::Join`. moto's `Fn::Sub` turns `$$` into `$` (it substitutes with `string.Template`),
which breaks the Step Functions context object (`$$.Execution.Name`) in the pipeline's
definition; moto's `Fn::Join` passes text through as it is. Pure template rewriting, no
moto import: moto_patches.py installs it into moto's CloudFormation parser."""

from __future__ import annotations

import re
from typing import Any

_PLACEHOLDER = re.compile(r"\$\{([^}!][^}]*)\}")


def sub_with_dollar_dollar(node: dict[str, Any]) -> bool:
    sub = node.get("Fn::Sub")
    return isinstance(sub, list) and len(sub) == 2 and "$$" in sub[0]


def sub_as_join(text: str, mappings: dict[str, Any]) -> dict[str, Any]:
    """The same value as CloudFormation's `Fn::Sub: [text, mappings]`, spelled as Fn::Join
    parts (moto's Fn::Join passes text through as it is)."""
    parts: list[Any] = []
    position = 0
    for match in _PLACEHOLDER.finditer(text):
        parts.append(text[position : match.start()].replace("${!", "${"))
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
