"""The judge result: what the Judge step writes to S3 and the Record step reads."""

from __future__ import annotations

from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from prtrace.judge.rubric import DimensionId

JUDGE_RESULT_VERSION: Final = "prtrace.judge/v1"
OFFLINE_JUDGE: Final = "offline-heuristic v1"

# ok: scores are valid. invalid: the model's answer failed validation twice; no scores are
# kept. judge_unavailable: the model could not be reached; the offline scores stand in.
JudgeStatus = Literal["ok", "invalid", "judge_unavailable"]
_RESULT = ConfigDict(extra="forbid", frozen=True)


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


class JudgeResult(BaseModel):
    model_config = _RESULT

    version: Literal["prtrace.judge/v1"] = JUDGE_RESULT_VERSION
    trace_id: str
    judge: str = Field(description=f"`{OFFLINE_JUDGE}` or `openai:<model>`")
    rubric_version: str
    status: JudgeStatus
    overall: float | None = Field(description="weighted mean of the scores, 0..5")
    scores: list[DimensionScore]
    qa_verdict: str | None
    summary: str = ""
    problems: list[str] = Field(
        default_factory=list, description="why the result is invalid or the model unavailable"
    )
    usage: Usage | None = None
    prompt: PromptInfo | None = None
    review: ReviewFlag | None = None

    def score_of(self, dimension: str) -> int:
        return next(s.score for s in self.scores if s.dimension == dimension)


class ReviewFlag(BaseModel):
    """Ensemble mode: per-dimension spread across samples, flagged above a threshold."""

    model_config = _RESULT

    samples: int
    spread: dict[str, int]
    threshold: int
    needs_human_review: bool


JudgeResult.model_rebuild()
