"""The committed JSON Schemas in schemas/trace-v1/ are exactly what the models generate,
and docs/schema.md's examples and limits agree with the code."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest
from pydantic import TypeAdapter

from prtrace.canonical import canonical_json
from prtrace.ingest.service import MAX_CHUNK_BODY_BYTES, MAX_CHUNK_SEQ
from prtrace.json_schema import DIALECT, json_schemas, render, write_json_schemas
from prtrace.schema import (
    EVENT_TYPES,
    MAX_ARG_LEN,
    MAX_ARGV_ITEMS,
    MAX_BLOB_SIZE,
    MAX_DURATION_MS,
    MAX_EVENT_SEQ,
    MAX_EVENTS_PER_CHUNK,
    MAX_ID_LEN,
    MAX_INLINE_DIFF_LEN,
    MAX_LINE_COUNT,
    MAX_LIST_ITEMS,
    MAX_PATH_LEN,
    MAX_TEST_COUNT,
    MAX_TEST_ID_LEN,
    MAX_TEXT_LEN,
    Event,
    TraceMetadata,
)

COMMITTED = Path(__file__).resolve().parents[2] / "schemas" / "trace-v1"
STALE = "schemas/trace-v1/{name} is stale: run `make schemas` and commit the result"


def test_every_generated_schema_is_committed_and_nothing_else() -> None:
    committed = sorted(path.name for path in COMMITTED.glob("*.schema.json"))
    assert committed == sorted(json_schemas()), (
        "schemas/trace-v1/ does not hold exactly the generated files: run `make schemas`"
    )


@pytest.mark.parametrize("name", sorted(json_schemas()))
def test_committed_schema_matches_the_models(name: str) -> None:
    assert (COMMITTED / name).read_bytes() == render(json_schemas()[name]), STALE.format(name=name)


def test_rendering_is_sorted_indented_and_ends_with_a_newline() -> None:
    text = render({"b": 1, "a": {"d": [1], "c": 2}}).decode()
    assert text == '{\n  "a": {\n    "c": 2,\n    "d": [\n      1\n    ]\n  },\n  "b": 1\n}\n'


def test_write_json_schemas_writes_what_the_drift_test_compares(tmp_path: Path) -> None:
    written = write_json_schemas(tmp_path / "out")
    assert sorted(p.name for p in written) == sorted(json_schemas())
    for path in written:
        assert path.read_bytes() == (COMMITTED / path.name).read_bytes()


def test_published_schemas_describe_schema_v1() -> None:
    event = orjson.loads((COMMITTED / "event.schema.json").read_bytes())
    chunk = orjson.loads((COMMITTED / "chunk-body.schema.json").read_bytes())
    metadata = orjson.loads((COMMITTED / "trace-metadata.schema.json").read_bytes())
    assert {event["$schema"], chunk["$schema"], metadata["$schema"]} == {DIALECT}
    assert set(event["discriminator"]["mapping"]) == set(EVENT_TYPES)
    assert chunk["properties"]["events"]["maxItems"] == MAX_EVENTS_PER_CHUNK
    assert chunk["additionalProperties"] is False
    assert set(metadata["required"]) == {"repository", "task", "author", "client"}


# ---- docs/schema.md stays true to the code ----------------------------------------------

SCHEMA_MD = (Path(__file__).resolve().parents[2] / "docs" / "schema.md").read_text()


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", SCHEMA_MD, flags=re.DOTALL)


def test_schema_md_examples_are_valid() -> None:
    examples = [orjson.loads(block) for block in _blocks("json")]
    events = [e for e in examples if "type" in e]
    assert sorted(e["type"] for e in events) == sorted(EVENT_TYPES)
    for raw in events:
        TypeAdapter(Event).validate_python(raw)
    [metadata] = [e for e in examples if "type" not in e]
    TraceMetadata.model_validate(metadata)


def test_schema_md_canonical_example_is_exact() -> None:
    [note] = [e for e in map(orjson.loads, _blocks("json")) if e.get("type") == "rationale_note"]
    canonical = canonical_json(
        TypeAdapter(Event).validate_python(note).model_dump(mode="json", exclude_none=True)
    )
    assert canonical.decode() + "\n" in _blocks("text")


@pytest.mark.parametrize(
    "limit",
    [
        MAX_EVENTS_PER_CHUNK,
        MAX_EVENT_SEQ,
        MAX_ID_LEN,
        MAX_PATH_LEN,
        MAX_INLINE_DIFF_LEN,
        MAX_TEXT_LEN,
        MAX_ARGV_ITEMS,
        MAX_ARG_LEN,
        MAX_LIST_ITEMS,
        MAX_TEST_ID_LEN,
        MAX_DURATION_MS,
        MAX_LINE_COUNT,
        MAX_TEST_COUNT,
        MAX_BLOB_SIZE,
        MAX_CHUNK_BODY_BYTES,
        MAX_CHUNK_SEQ,
    ],
)
def test_schema_md_states_each_limit(limit: int) -> None:
    assert f"{limit:,}" in SCHEMA_MD


def test_each_document_says_how_integers_are_read():
    from prtrace.json_schema import json_schemas

    for name, document in json_schemas().items():
        assert "3.0" in document["$comment"], name
