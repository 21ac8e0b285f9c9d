"""The rubric file is valid, complete, weighted to 1, and invalid rubrics are refused."""

from __future__ import annotations

import orjson
import pytest
from pydantic import ValidationError

from prtrace.judge.rubric import DIMENSION_IDS, RUBRIC_DIR, Rubric, load_rubric


def _raw():
    return orjson.loads((RUBRIC_DIR / "rubric_v1.json").read_bytes())


def test_rubric_v1_describes_six_dimensions_and_every_level():
    rubric = load_rubric()
    assert rubric.version == "prtrace.rubric/v1"
    assert [d.id for d in rubric.dimensions] == list(DIMENSION_IDS)
    for dimension in rubric.dimensions:
        assert sorted(dimension.levels) == ["0", "1", "2", "3", "4", "5"]
    assert sum(d.weight for d in rubric.dimensions) == pytest.approx(1.0)


def test_weighted_overall():
    rubric = load_rubric()
    assert rubric.weighted_overall(dict.fromkeys(DIMENSION_IDS, 5)) == 5.0
    scores = dict.fromkeys(DIMENSION_IDS, 0) | {"fix_correctness": 5}
    assert rubric.weighted_overall(scores) == 1.5  # weight 0.3


def test_weights_must_sum_to_one():
    raw = _raw()
    raw["dimensions"][0]["weight"] = 0.5
    with pytest.raises(ValidationError, match="sum to 1"):
        Rubric.model_validate(raw)


def test_every_level_must_be_described():
    raw = _raw()
    del raw["dimensions"][2]["levels"]["3"]
    with pytest.raises(ValidationError, match=r"levels 0\.\.5"):
        Rubric.model_validate(raw)


def test_every_dimension_exactly_once():
    raw = _raw()
    raw["dimensions"][1] = raw["dimensions"][0]
    with pytest.raises(ValidationError, match="once"):
        Rubric.model_validate(raw)
