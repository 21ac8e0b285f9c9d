"""JSON Schema of the judge result and of the rubric file, generated from the models.

Committed in schemas/judge-v2/ (results `prtrace.judge/v2`; schemas/judge-v1/ keeps v1's)
for the record step and dataset builders in any language;
tests/unit/test_judge_schema_drift.py fails when they are stale. Regenerate with
`python -m prtrace.judge.json_schema`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from prtrace.json_schema import DIALECT, write_schema_files
from prtrace.judge.result import JudgeResult
from prtrace.judge.rubric import Rubric

DEFAULT_OUTPUT_DIR: Final = Path("schemas") / "judge-v2"


def judge_json_schemas() -> dict[str, dict[str, Any]]:
    documents = {
        "judge-result.schema.json": JudgeResult.model_json_schema(),
        "rubric.schema.json": Rubric.model_json_schema(),
    }
    return {name: {"$schema": DIALECT, **doc} for name, doc in documents.items()}


def write_judge_json_schemas(output_dir: Path = DEFAULT_OUTPUT_DIR) -> list[Path]:
    return write_schema_files(judge_json_schemas(), output_dir)


if __name__ == "__main__":
    for path in write_judge_json_schemas():
        print(path)
