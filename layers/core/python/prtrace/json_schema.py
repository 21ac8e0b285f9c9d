"""JSON Schema documents of trace schema v1, generated from the pydantic models.

The committed copies live in schemas/trace-v1/ so clients in any language can validate
before they send; tests/unit/test_json_schema_drift.py fails when they are stale.
Regenerate with `make schemas` (runs `python -m prtrace.json_schema`).

The models check a few rules JSON Schema cannot express (a real calendar date in `ts`,
rename/old_path, diff vs diff_ref, a BlobRef uri naming its own sha256); the server
enforces those too. docs/schema.md lists them.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Final

import orjson
from pydantic import TypeAdapter

from prtrace.schema import ChunkBody, Event, TraceMetadata

DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"
DEFAULT_OUTPUT_DIR: Final = Path("schemas") / "trace-v1"
# The server reads numbers as JSON Schema does; said in each document so nobody guesses.
NUMBERS_NOTE: Final = (
    "integer means any JSON number with no fractional part: 3, 3.0 and 3e0 are accepted "
    "as 3 (and stored as 3); 3.5 is refused. See docs/schema.md."
)


def json_schemas() -> dict[str, dict[str, Any]]:
    """File name -> JSON Schema document, for every schema v1 body a client builds."""
    event: dict[str, Any] = TypeAdapter(Event).json_schema()
    event["title"] = "Event"
    documents = {
        "trace-metadata.schema.json": TraceMetadata.model_json_schema(),
        "chunk-body.schema.json": ChunkBody.model_json_schema(),
        "event.schema.json": event,
    }
    return {
        name: {"$schema": DIALECT, "$comment": NUMBERS_NOTE, **doc}
        for name, doc in documents.items()
    }


def render(document: dict[str, Any]) -> bytes:
    """Stable bytes: sorted keys, two-space indent, trailing newline."""
    return orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def write_schema_files(documents: dict[str, dict[str, Any]], output_dir: Path) -> list[Path]:
    """Write each document under its file name, as `render` makes it."""
    output_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, document in documents.items():
        path = output_dir / name
        path.write_bytes(render(document))
        written.append(path)
    return written


def write_json_schemas(output_dir: Path = DEFAULT_OUTPUT_DIR) -> list[Path]:
    return write_schema_files(json_schemas(), output_dir)


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_OUTPUT_DIR
    for path in write_json_schemas(target):
        print(path)
