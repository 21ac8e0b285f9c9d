"""The scoring rubric as data: `rubric_v1.json`, validated into pydantic models.

The rubric is versioned with the code that reads it; every judge result names the rubric
version it was scored against, so scores from different rubrics are never mixed up.
"""

from __future__ import annotations

import math
from functools import cache
from pathlib import Path
from typing import Annotated, Final, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

RUBRIC_DIR: Final = Path(__file__).parent
DimensionId = Literal[
    "problem_understanding",
    "diagnosis",
    "fix_correctness",
    "test_discipline",
    "efficiency",
    "communication",
]
DIMENSION_IDS: Final[tuple[str, ...]] = get_args(DimensionId)  # in rubric order
_RUBRIC = ConfigDict(extra="forbid", frozen=True, strict=True)


class Scale(BaseModel):
    model_config = _RUBRIC

    min: Literal[0]
    max: Literal[5]


class Dimension(BaseModel):
    model_config = _RUBRIC

    id: DimensionId
    name: Annotated[str, Field(min_length=1)]
    weight: Annotated[float, Field(gt=0, le=1)]
    question: Annotated[str, Field(min_length=1)]
    levels: dict[str, Annotated[str, Field(min_length=1)]]

    @model_validator(mode="after")
    def _every_level_described(self) -> Dimension:
        if sorted(self.levels) != [str(level) for level in range(6)]:
            raise ValueError(f"{self.id}: describe exactly the levels 0..5")
        return self


class Rubric(BaseModel):
    model_config = _RUBRIC

    version: Annotated[str, Field(pattern=r"^prtrace\.rubric/v[0-9]+$")]
    scale: Scale
    dimensions: list[Dimension]

    @model_validator(mode="after")
    def _complete_and_weighted(self) -> Rubric:
        ids = [dimension.id for dimension in self.dimensions]
        if sorted(ids) != sorted(DIMENSION_IDS) or len(ids) != len(set(ids)):
            raise ValueError(f"the rubric must score each of {', '.join(DIMENSION_IDS)} once")
        total = math.fsum(dimension.weight for dimension in self.dimensions)
        if not math.isclose(total, 1.0, abs_tol=1e-9):
            raise ValueError(f"dimension weights must sum to 1, not {total}")
        return self

    def weighted_overall(self, scores: dict[str, int]) -> float:
        """The weighted mean score, 0..5, rounded to 3 decimals (stable across platforms)."""
        total = math.fsum(d.weight * scores[d.id] for d in self.dimensions)
        return round(total, 3)


@cache
def load_rubric(name: str = "rubric_v1.json") -> Rubric:
    return Rubric.model_validate_json((RUBRIC_DIR / name).read_bytes())
