"""The LLM judge: the rendered trace goes to a chat model, and its answer is checked before
anything is kept.

The model sits behind `ChatModel` (adapters/openai_chat.py implements it with the `openai`
SDK, which itself retries 429/5xx/timeouts with backoff). Every answer is validated: JSON,
every rubric dimension present and no other, integer scores 0..5, and every cited event id
an event of the trace. A rejected answer is sent back once with the reasons; a second
rejection marks the result `invalid` with no scores: an unchecked score is never kept.
A model that cannot be reached raises `ModelUnavailable` for the caller to fall back on.

Ensemble mode (`samples` > 1) asks for independent answers and keeps, per dimension, the
lower median of the valid samples' scores (an integer on the rubric's scale) with the
rationale of a sample that gave it; a spread (max - min) above `review_spread` on any
dimension flags the result for human review.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal, Protocol

import orjson

from prtrace.document import TraceDocument
from prtrace.judge.prompt import DEFAULT_TOKEN_BUDGET, JudgePrompt, build_prompt, response_schema
from prtrace.judge.result import DimensionScore, JudgeResult, PromptInfo, ReviewFlag, Usage
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
        self, messages: Sequence[ChatMessage], schema: dict[str, Any], time_left_s: float | None
    ) -> ModelReply:
        """One structured-output completion, retries included, finished within
        `time_left_s` seconds when given; raises ModelUnavailable."""


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


class LLMJudge:
    def __init__(
        self,
        model: ChatModel,
        rubric: Rubric,
        pricing: Pricing | None = None,
        token_budget: int = DEFAULT_TOKEN_BUDGET,
        samples: int = 1,
        review_spread: int = 2,
    ) -> None:
        self._model = model
        self._rubric = rubric
        self._pricing = pricing or Pricing()
        self._token_budget = token_budget
        self._samples = samples
        self._review_spread = review_spread

    @property
    def name(self) -> str:
        return self._model.name

    def judge(
        self,
        document: TraceDocument,
        qa: QAReport | None,
        metrics: dict[str, Any],
        time_left_s: Callable[[], float] | None = None,
    ) -> JudgeResult:
        """Raises JudgeUnavailable when the model cannot be reached, or cannot answer
        before the deadline `time_left_s` reports (a Lambda must return, not time out)."""
        prompt = build_prompt(document, qa, self._rubric, metrics, self._token_budget)
        event_ids = {event.event_id for event in document.events}
        tally = _Tally()
        answers: list[tuple[list[DimensionScore], str]] = []
        for _ in range(self._samples):
            try:
                answer = self._one_answer(prompt, event_ids, tally, time_left_s)
            except ModelUnavailable as exc:
                reason = f"{self.name} unavailable: {exc}"
                if not answers:
                    raise JudgeUnavailable(
                        reason, tally.usage(self._pricing), tally.problems
                    ) from exc
                # Keep the samples already paid for; fewer than asked flags the review.
                tally.problems.append(reason)
                break
            if answer is not None:
                answers.append(answer)
        info = PromptInfo(
            sha256=prompt.sha256,
            estimated_tokens=prompt.estimated_tokens,
            token_budget=prompt.token_budget,
            events_rendered=prompt.events_rendered,
            events_omitted=prompt.events_omitted,
        )
        common = {
            "trace_id": document.trace_id,
            "judge": self.name,
            "rubric_version": self._rubric.version,
            "qa_verdict": qa.verdict if qa else None,
            "usage": tally.usage(self._pricing),
            "prompt": info,
            "problems": tally.problems,
        }
        if not answers:
            return JudgeResult(status="invalid", overall=None, scores=[], **common)
        scores, summary, review = self._combine(answers)
        return JudgeResult(
            status="ok",
            overall=self._rubric.weighted_overall({s.dimension: s.score for s in scores}),
            scores=scores,
            summary=summary,
            review=review,
            **common,
        )

    def _one_answer(
        self,
        prompt: JudgePrompt,
        event_ids: set[str],
        tally: _Tally,
        time_left_s: Callable[[], float] | None,
    ) -> tuple[list[DimensionScore], str] | None:
        messages = [ChatMessage("system", prompt.system), ChatMessage("user", prompt.user)]
        schema = response_schema(self._rubric)
        for attempt in range(1, ANSWER_ATTEMPTS + 1):
            left = time_left_s() if time_left_s is not None else None
            if left is not None and left < MIN_MODEL_CALL_S:
                raise ModelUnavailable(f"{max(left, 0):.1f} s left before the deadline")
            reply = self._model.complete(messages, schema, left)
            tally.attempts += 1
            tally.prompt_tokens += reply.prompt_tokens
            tally.completion_tokens += reply.completion_tokens
            try:
                return validate_answer(reply, self._rubric, event_ids)
            except AnswerRejected as rejected:
                tally.problems += [f"attempt {tally.attempts}: {p}" for p in rejected.problems]
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
        return None

    def _combine(
        self, answers: list[tuple[list[DimensionScore], str]]
    ) -> tuple[list[DimensionScore], str, ReviewFlag | None]:
        if self._samples == 1:
            scores, summary = answers[0]
            return scores, summary, None
        combined: list[DimensionScore] = []
        spread: dict[str, int] = {}
        for index, dimension in enumerate(self._rubric.dimensions):
            values = [scores[index].score for scores, _ in answers]
            median = statistics.median_low(values)
            spread[dimension.id] = max(values) - min(values)
            combined.append(next(s[index] for s, _ in answers if s[index].score == median))
        review = ReviewFlag(
            samples=len(answers),
            spread=spread,
            threshold=self._review_spread,
            needs_human_review=max(spread.values()) > self._review_spread
            or len(answers) < self._samples,
        )
        return combined, answers[0][1], review
