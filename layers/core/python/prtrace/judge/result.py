"""The judge result: what the Judge step writes to S3 and the Record step reads.

`prtrace.judge/v2`. Since v2 a result's `scores` and `overall` are always those of the
judge named in `judge`: when the model could not be reached (`judge_unavailable`) they are
empty and null, and the offline judge's scores stand apart in `stand_in`, so a heuristic
score is never read as a model's. A stored v1 result is read as v2 (its stand-in scores
move to `stand_in`).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from prtrace.judge.rubric import DimensionId

JUDGE_RESULT_VERSION: Final = "prtrace.judge/v2"
OFFLINE_JUDGE: Final = "offline-heuristic v2"
# How an ensemble of models is named in `judge`: their names joined.
MODEL_SEPARATOR: Final = " + "

# ok: scores are valid. invalid: the model's answer failed validation twice; no scores are
# kept. judge_unavailable: the model could not be reached; no model scores, the offline
# scores stand in (under `stand_in`).
JudgeStatus = Literal["ok", "invalid", "judge_unavailable"]
_RESULT = ConfigDict(extra="forbid", frozen=True)
# v1 results named the unreachable model only in their last problem.
_V1_UNAVAILABLE = re.compile(r"^(\S+(?: \+ \S+)*) unavailable: ")


class DimensionScore(BaseModel):
    model_config = _RESULT

    dimension: DimensionId
    score: Annotated[int, Field(ge=0, le=5)]
    rationale: str
    cited_event_ids: list[str]


class Usage(BaseModel):
    """Tokens as the server counted them, summed over every attempt."""

    model_config = _RESULT

    attempts: int
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cost_usd: float | None = Field(
        default=None, description="null when no price per 1M tokens is configured"
    )


class PromptInfo(BaseModel):
    model_config = _RESULT

    sha256: str
    estimated_tokens: int
    token_budget: int
    events_rendered: int
    events_omitted: int


class StandIn(BaseModel):
    """Scores of another judge kept while the configured one was unavailable: shown for
    what they are, never as the result's own `overall`."""

    model_config = _RESULT

    judge: str = Field(description=f"`{OFFLINE_JUDGE}`")
    overall: float | None
    scores: list[DimensionScore]


class ModelScores(BaseModel):
    """What one model of an ensemble said: the lower median of its valid samples."""

    model_config = _RESULT

    judge: str = Field(description="`openai:<model>`")
    samples: int = Field(description="its answers that passed validation")
    overall: float | None = Field(description="null when none of its answers was valid")
    scores: dict[str, int] = Field(description="per dimension; empty when no answer was valid")
    problems: list[str] = Field(
        default_factory=list, description="why it has fewer valid samples than asked"
    )


class ReviewFlag(BaseModel):
    """Ensemble mode (several samples or several models): per-dimension spread across all
    valid samples, flagged above a threshold, with each model's own scores."""

    model_config = _RESULT

    samples: int
    spread: dict[str, int]
    threshold: int
    needs_human_review: bool
    models: list[ModelScores] = Field(
        default_factory=list, description="per model, when several models answered"
    )
    reasons: list[str] = Field(
        default_factory=list, description="why review is needed: who said what"
    )


class JudgeResult(BaseModel):
    model_config = _RESULT

    version: Literal["prtrace.judge/v2"] = JUDGE_RESULT_VERSION
    trace_id: str
    judge: str = Field(
        description=f"who scored `scores`: `{OFFLINE_JUDGE}`, `openai:<model>`, or several "
        f"models joined by `{MODEL_SEPARATOR.strip()}`; for `judge_unavailable` the model "
        "that could not be reached"
    )
    rubric_version: str
    status: JudgeStatus
    overall: float | None = Field(
        description="weighted mean of the scores, 0..5; null when `invalid` or `judge_unavailable`"
    )
    scores: list[DimensionScore]
    qa_verdict: str | None
    summary: str = ""
    problems: list[str] = Field(
        default_factory=list, description="why the result is invalid or the model unavailable"
    )
    usage: Usage | None = None
    prompt: PromptInfo | None = None
    review: ReviewFlag | None = None
    stand_in: StandIn | None = Field(
        default=None, description="`judge_unavailable` only: the offline scores, labelled"
    )

    @model_validator(mode="before")
    @classmethod
    def _upgrade_v1(cls, data: Any) -> Any:
        """A v1 `judge_unavailable` result carried the offline scores as its own."""
        if not isinstance(data, dict) or data.get("version") != "prtrace.judge/v1":
            return data
        upgraded = {**data, "version": JUDGE_RESULT_VERSION}
        if data.get("status") == "judge_unavailable" and data.get("scores"):
            problems = data.get("problems") or []
            asked = _V1_UNAVAILABLE.match(problems[-1]) if problems else None
            upgraded |= {
                "judge": asked[1] if asked else "model (not recorded)",
                "overall": None,
                "scores": [],
                "stand_in": {
                    "judge": data.get("judge"),
                    "overall": data.get("overall"),
                    "scores": data.get("scores"),
                },
            }
        return upgraded

    def score_of(self, dimension: str) -> int:
        return next(s.score for s in self.scores if s.dimension == dimension)
