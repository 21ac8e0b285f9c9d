"""The LLM judge: the rendered trace goes to a chat model, and its answer is checked before
anything is kept.

The model sits behind `ChatModel` (adapters/openai_chat.py implements it with the `openai`
SDK, which itself retries 429/5xx/timeouts with backoff). Every answer is validated: JSON,
every rubric dimension present and no other, integer scores 0..5, and every cited event id
an event of the trace. A rejected answer is sent back once with the reasons; a second
rejection marks the result `invalid` with no scores: an unchecked score is never kept.
A model that cannot be reached raises `ModelUnavailable` for the caller to fall back on.

Ensemble mode (`samples` > 1, or several models) asks each model for independent answers
and keeps, per dimension, the lower median of each model's valid samples, then the lower
median across models (an integer on the rubric's scale), with the rationale of an answer
that gave it; a spread (max - min) over all valid samples above `review_spread` on any
dimension flags the result for human review, saying which model said what.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal, Protocol

import orjson

from prtrace.assemble.document import TraceDocument
from prtrace.judge.patch import PatchEvidence
from prtrace.judge.prompt import (
    DEFAULT_TOKEN_BUDGET,
    JudgePrompt,
    ScoreBound,
    build_prompt,
    response_schema,
)
from prtrace.judge.result import (
    MODEL_SEPARATOR,
    DimensionScore,
    JudgeResult,
    ModelScores,
    PromptInfo,
    ReviewFlag,
    Usage,
)
from prtrace.judge.rubric import Rubric
from prtrace.qa.report import QAReport

ANSWER_ATTEMPTS: Final = 2  # the first answer and one corrected retry
# Below this many seconds before the caller's deadline, no model call is started.
MIN_MODEL_CALL_S: Final = 3.0
MAX_CITATIONS: Final = 20
MAX_RATIONALE_CHARS: Final = 4_000


@dataclass(frozen=True)
class ChatMessage:
    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True)
class ModelReply:
    content: str | None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None
    refusal: str | None = None


class ModelUnavailable(Exception):
    """The model could not be reached or refused the request, after the client's retries."""


class ChatModel(Protocol):
    @property
    def name(self) -> str:
        """How results name the judge, e.g. `openai:gpt-4.1-mini`."""

    def complete(
        self,
        messages: Sequence[ChatMessage],
        schema: dict[str, Any],
        time_left_s: float | None,
        sample: int = 0,
    ) -> ModelReply:
        """One structured-output completion, retries included, finished within
        `time_left_s` seconds when given; raises ModelUnavailable. `sample` numbers the
        independent answers of an ensemble (each gets its own seed)."""


@dataclass(frozen=True)
class Pricing:
    """USD per 1M tokens; None when not configured (then no cost is claimed)."""

    input_per_1m: float | None = None
    output_per_1m: float | None = None

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float | None:
        if self.input_per_1m is None or self.output_per_1m is None:
            return None
        total = prompt_tokens * self.input_per_1m + completion_tokens * self.output_per_1m
        return round(total / 1_000_000, 6)


class AnswerRejected(ValueError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def _check_dimension(name: str, raw: Any, event_ids: set[str]) -> list[str]:
    if not isinstance(raw, dict):
        return [f"{name}: expected an object"]
    problems = []
    score = raw.get("score")
    if isinstance(score, bool) or not isinstance(score, int):
        problems.append(f"{name}: score must be an integer, got {score!r:.40}")
    elif not 0 <= score <= 5:
        problems.append(f"{name}: score {score} is outside 0..5")
    if not isinstance(raw.get("rationale"), str):
        problems.append(f"{name}: rationale must be a string")
    cited = raw.get("cited_event_ids")
    if not isinstance(cited, list) or not all(isinstance(i, str) for i in cited):
        problems.append(f"{name}: cited_event_ids must be a list of strings")
    else:
        unknown = sorted({i for i in cited if i not in event_ids})
        if unknown:
            shown = ", ".join(repr(i[:64]) for i in unknown[:5])
            problems.append(f"{name}: cites events that are not in the trace: {shown}")
    return problems


def validate_answer(
    reply: ModelReply, rubric: Rubric, event_ids: set[str]
) -> tuple[list[DimensionScore], str]:
    """The scores of a reply, or AnswerRejected listing everything wrong with it."""
    if reply.refusal:
        raise AnswerRejected([f"the model refused: {reply.refusal[:200]}"])
    if reply.finish_reason == "length":
        raise AnswerRejected(["the answer was cut off at the token limit"])
    try:
        answer = orjson.loads(reply.content or "")
    except orjson.JSONDecodeError as exc:
        raise AnswerRejected([f"the answer is not valid JSON ({exc})"]) from None
    scores = answer.get("scores") if isinstance(answer, dict) else None
    if not isinstance(scores, dict):
        raise AnswerRejected(['the answer has no "scores" object'])
    expected = [dimension.id for dimension in rubric.dimensions]
    problems = [f"{name}: missing" for name in expected if name not in scores]
    problems += [f"{name!r:.64}: not a rubric dimension" for name in scores if name not in expected]
    for name in expected:
        if name in scores:
            problems += _check_dimension(name, scores[name], event_ids)
    if problems:
        raise AnswerRejected(problems)
    summary = answer.get("summary")
    return [
        DimensionScore(
            dimension=name,
            score=scores[name]["score"],
            rationale=scores[name]["rationale"][:MAX_RATIONALE_CHARS],
            cited_event_ids=list(dict.fromkeys(scores[name]["cited_event_ids"]))[:MAX_CITATIONS],
        )
        for name in expected
    ], summary[:MAX_RATIONALE_CHARS] if isinstance(summary, str) else ""


def clamp_to_evidence(
    scores: list[DimensionScore], bound: ScoreBound | None
) -> tuple[list[DimensionScore], list[str]]:
    """Scores above the bound the QA evidence sets (prompt.evidence_bound) lowered to it,
    the rationale saying so; and one problem per score lowered, for the result."""
    if bound is None:
        return scores, []
    kept: list[DimensionScore] = []
    lowered: list[str] = []
    for score in scores:
        if score.dimension == bound.dimension and score.score > bound.at_most:
            why = f"lowered from {score.score} to {bound.at_most}: {bound.reason}"
            lowered.append(
                f"{score.dimension}: the model's score contradicts the QA evidence, {why}"
            )
            score = score.model_copy(
                update={"score": bound.at_most, "rationale": f"[{why}] {score.rationale}"}
            )
        kept.append(score)
    return kept, lowered


@dataclass
class _Tally:
    attempts: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    problems: list[str] = field(default_factory=list)

    def usage(self, pricing: Pricing) -> Usage:
        return Usage(
            attempts=self.attempts,
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            total_tokens=self.prompt_tokens + self.completion_tokens,
            cost_usd=pricing.cost(self.prompt_tokens, self.completion_tokens),
        )


class JudgeUnavailable(Exception):
    """The model could not be reached; carries what was spent and seen before that."""

    def __init__(self, reason: str, usage: Usage, problems: list[str]) -> None:
        super().__init__(reason)
        self.reason = reason
        self.usage = usage
        self.problems = problems


Answer = tuple[list[DimensionScore], str]


@dataclass
class _ModelAnswers:
    """One model's valid answers, and why it has fewer than asked."""

    name: str
    answers: list[Answer] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _lower_medians(candidates: Sequence[list[DimensionScore]]) -> list[DimensionScore]:
    """Per dimension, the lower median of the candidates' scores (an integer on the scale),
    with the rationale and citations of a candidate that gave it."""
    combined = []
    for index in range(len(candidates[0])):
        median = statistics.median_low(scores[index].score for scores in candidates)
        combined.append(next(s[index] for s in candidates if s[index].score == median))
    return combined


class LLMJudge:
    def __init__(
        self,
        model: ChatModel | Sequence[ChatModel],
        rubric: Rubric,
        pricing: Pricing | None = None,
        token_budget: int = DEFAULT_TOKEN_BUDGET,
        samples: int = 1,
        review_spread: int = 2,
    ) -> None:
        self._models = list(model) if isinstance(model, Sequence) else [model]
        if not self._models:
            raise ValueError("an LLM judge needs at least one model")
        self._rubric = rubric
        self._pricing = pricing or Pricing()
        self._token_budget = token_budget
        self._samples = samples
        self._review_spread = review_spread

    @property
    def name(self) -> str:
        return MODEL_SEPARATOR.join(model.name for model in self._models)

    def judge(
        self,
        document: TraceDocument,
        qa: QAReport | None,
        metrics: dict[str, Any],
        time_left_s: Callable[[], float] | None = None,
        patch: PatchEvidence | None = None,
    ) -> JudgeResult:
        """Raises JudgeUnavailable when no model can be reached, or none can answer before
        the deadline `time_left_s` reports (a Lambda must return, not time out). `patch`:
        the base→final patch for the prompt (prtrace.judge.patch; without it the recorded
        edits stand in)."""
        prompt = build_prompt(document, qa, self._rubric, metrics, self._token_budget, patch)
        event_ids = {event.event_id for event in document.events}
        tally = _Tally()
        per_model: list[_ModelAnswers] = []
        unreachable: list[str] = []
        for model in self._models:
            got = _ModelAnswers(model.name)
            per_model.append(got)
            for sample in range(self._samples):
                try:
                    answer = self._one_answer(model, sample, prompt, event_ids, tally, time_left_s)
                except ModelUnavailable as exc:
                    reason = f"{model.name} unavailable: {exc}"
                    got.problems.append(reason)
                    unreachable.append(reason)
                    break  # its remaining samples would meet the same outage
                if answer is None:
                    got.problems.append(f"sample {sample + 1}: the answer failed validation")
                else:
                    got.answers.append(answer)
        answered = [got for got in per_model if got.answers]
        if not answered and unreachable:
            raise JudgeUnavailable(
                "; ".join(unreachable), tally.usage(self._pricing), tally.problems
            )
        # Some answers are paid for: keep them; fewer than asked flags the review.
        tally.problems += unreachable
        info = PromptInfo(
            sha256=prompt.sha256,
            estimated_tokens=prompt.estimated_tokens,
            token_budget=prompt.token_budget,
            events_rendered=prompt.events_rendered,
            events_omitted=prompt.events_omitted,
        )
        common = {
            "trace_id": document.trace_id,
            "rubric_version": self._rubric.version,
            "qa_verdict": qa.verdict if qa else None,
            "usage": tally.usage(self._pricing),
            "prompt": info,
            "problems": tally.problems,
        }
        if not answered:
            return JudgeResult(judge=self.name, status="invalid", overall=None, scores=[], **common)
        scores, summary, review = self._combine(per_model)
        return JudgeResult(
            # Who scored: the models whose answers were kept.
            judge=MODEL_SEPARATOR.join(got.name for got in answered),
            status="ok",
            overall=self._rubric.weighted_overall({s.dimension: s.score for s in scores}),
            scores=scores,
            summary=summary,
            review=review,
            **common,
        )

    def _one_answer(
        self,
        model: ChatModel,
        sample: int,
        prompt: JudgePrompt,
        event_ids: set[str],
        tally: _Tally,
        time_left_s: Callable[[], float] | None,
    ) -> Answer | None:
        messages = [ChatMessage("system", prompt.system), ChatMessage("user", prompt.user)]
        schema = response_schema(self._rubric)
        # With several models, each problem says whose answer it was.
        whose = f"{model.name} " if len(self._models) > 1 else ""
        for attempt in range(1, ANSWER_ATTEMPTS + 1):
            left = time_left_s() if time_left_s is not None else None
            if left is not None and left < MIN_MODEL_CALL_S:
                raise ModelUnavailable(f"{max(left, 0):.1f} s left before the deadline")
            reply = model.complete(messages, schema, left, sample=sample)
            tally.attempts += 1
            tally.prompt_tokens += reply.prompt_tokens
            tally.completion_tokens += reply.completion_tokens
            try:
                scores, summary = validate_answer(reply, self._rubric, event_ids)
            except AnswerRejected as rejected:
                tally.problems += [
                    f"{whose}attempt {tally.attempts}: {p}" for p in rejected.problems
                ]
                if attempt == ANSWER_ATTEMPTS:
                    return None
                messages += [
                    ChatMessage("assistant", (reply.content or "")[:8_000]),
                    ChatMessage(
                        "user",
                        "Your answer was rejected: "
                        + "; ".join(rejected.problems)
                        + ". Answer again for the same trace with corrected JSON only.",
                    ),
                ]
            else:
                # A score the QA evidence rules out is never kept as the model said it.
                scores, lowered = clamp_to_evidence(scores, prompt.bound)
                tally.problems += [f"{whose}attempt {tally.attempts}: {n}" for n in lowered]
                return scores, summary
        return None

    def _combine(
        self, per_model: list[_ModelAnswers]
    ) -> tuple[list[DimensionScore], str, ReviewFlag | None]:
        """One answer is kept as is. Otherwise each model's lower median, then the lower
        median across models (each model counts once, however many samples it gave); the
        spread is over every valid sample, and above `review_spread` it flags the result."""
        answered = [got for got in per_model if got.answers]
        if len(self._models) == 1 and self._samples == 1:
            scores, summary = answered[0].answers[0]
            return scores, summary, None
        # Each model's own lower median; empty for a model with no valid answer.
        medians = [
            _lower_medians([scores for scores, _ in got.answers]) if got.answers else []
            for got in per_model
        ]
        combined = _lower_medians([median for median in medians if median])
        spread: dict[str, int] = {}
        reasons: list[str] = []
        for index, dimension in enumerate(self._rubric.dimensions):
            values = [scores[index].score for got in answered for scores, _ in got.answers]
            spread[dimension.id] = max(values) - min(values)
            if spread[dimension.id] > self._review_spread:
                said = ", ".join(
                    f"{got.name} said {'/'.join(str(s[index].score) for s, _ in got.answers)}"
                    for got in answered
                )
                reasons.append(
                    f"{dimension.id}: {said} (spread {spread[dimension.id]} "
                    f"> {self._review_spread})"
                )
        for got in per_model:
            if len(got.answers) < self._samples:
                reasons.append(
                    f"{got.name}: {len(got.answers)} of {self._samples} answers valid"
                    + (f" ({got.problems[-1]})" if got.problems else "")
                )
        models = [
            ModelScores(
                judge=got.name,
                samples=len(got.answers),
                overall=(
                    self._rubric.weighted_overall({s.dimension: s.score for s in median})
                    if median
                    else None
                ),
                scores={s.dimension: s.score for s in median},
                problems=got.problems,
            )
            for got, median in zip(per_model, medians, strict=True)
        ]
        review = ReviewFlag(
            samples=sum(len(got.answers) for got in answered),
            spread=spread,
            threshold=self._review_spread,
            needs_human_review=bool(reasons),
            models=models if len(self._models) > 1 else [],
            reasons=reasons,
        )
        return combined, answered[0].answers[0][1], review
