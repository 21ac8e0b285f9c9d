"""The committed JSON Schemas in schemas/judge-v2/ are what the models generate, and real
results and the rubric file validate against them."""

from __future__ import annotations

from pathlib import Path

import jsonschema  # a locked dev dependency (through moto and cfn-lint)
import orjson
import pytest

from prtrace.json_schema import render
from prtrace.judge.json_schema import judge_json_schemas, write_judge_json_schemas
from prtrace.judge.rubric import RUBRIC_DIR, load_rubric
from prtrace.judge.service import encode_result, judge_trace
from tests.judge_factories import qa_report, sample_document

COMMITTED = Path(__file__).resolve().parents[2] / "schemas" / "judge-v2"


@pytest.mark.parametrize("name", sorted(judge_json_schemas()))
def test_committed_schema_is_current(name):
    expected = render(judge_json_schemas()[name])
    assert (COMMITTED / name).read_bytes() == expected, (
        f"schemas/judge-v2/{name} is stale: run `python -m prtrace.judge.json_schema`"
    )


def test_writer_writes_every_schema(tmp_path):
    written = write_judge_json_schemas(tmp_path)
    assert sorted(p.name for p in written) == sorted(judge_json_schemas())


def test_result_and_rubric_match_their_schemas():
    schemas = judge_json_schemas()
    result = judge_trace(sample_document(), qa_report(trace_id="tr_sample"), load_rubric(), None)
    jsonschema.validate(orjson.loads(encode_result(result)), schemas["judge-result.schema.json"])
    rubric = orjson.loads((RUBRIC_DIR / "rubric_v1.json").read_bytes())
    jsonschema.validate(rubric, schemas["rubric.schema.json"])
