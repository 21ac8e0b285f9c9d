"""The state machine reads and updates trace items by key itself (DynamoDB service
integrations): every key it builds must be the key the DynamoDB adapter writes."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from prtrace.adapters.dynamodb import _trace_key

ASL = Path(__file__).resolve().parents[2] / "state_machines" / "trace_pipeline.asl.json"
FORMAT = re.compile(r"^States\.Format\('([^']*)', \$\.(\w+)\)$")
SAMPLE = {"tenant": "acme", "trace_id": "01JB0000000000000000000000"}


def _keys(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if "Key" in node and isinstance(node["Key"], dict):
            yield node["Key"]
        for value in node.values():
            yield from _keys(value)
    elif isinstance(node, list):
        for value in node:
            yield from _keys(value)


def _evaluate(attribute: dict[str, str]) -> dict[str, str]:
    (path_field,) = attribute.values()
    match = FORMAT.match(path_field)
    assert match, f"key attribute is not a States.Format of one input field: {path_field}"
    template, field = match.groups()
    return {"S": template.replace("{}", SAMPLE[field], 1)}


def test_every_key_the_state_machine_builds_is_the_adapters_trace_key() -> None:
    keys = list(_keys(orjson.loads(ASL.read_bytes())))
    assert len(keys) >= 3  # mark assembling, testing and judging at least
    expected = _trace_key(SAMPLE["tenant"], SAMPLE["trace_id"])
    for key in keys:
        built = {name: _evaluate(attribute) for name, attribute in key.items()}
        assert built == expected
