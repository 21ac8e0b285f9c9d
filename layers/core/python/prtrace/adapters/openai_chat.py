"""The judge's chat model through the `openai` SDK: any OpenAI-compatible server works
(OpenAI, Azure-style gateways, vLLM, Ollama, a test double) given its base URL.

The SDK retries connection errors, timeouts, 408/409/429 and 5xx answers with exponential
backoff and jitter (honouring Retry-After), `max_retries` times, each request bounded by
`timeout_s`. Whatever still fails is `ModelUnavailable`; the judge then falls back.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any, cast

import openai
import orjson
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from botocore.exceptions import ClientError

from prtrace.judge.llm import ChatMessage, LLMJudge, ModelReply, ModelUnavailable, Pricing
from prtrace.judge.rubric import Rubric
from prtrace.judge.settings import JudgeSettings
from prtrace.settings import ConfigurationError

if TYPE_CHECKING:
    from openai.types.chat import ChatCompletionMessageParam

SECRET_MAX_AGE_S = 300
# What one retry's backoff may add (the SDK waits 0.5 s doubling, capped at 8 s).
RETRY_BACKOFF_ALLOWANCE_S = 2.0


class OpenAIChatModel:
    def __init__(self, client: openai.OpenAI, settings: JudgeSettings) -> None:
        self._client = client
        self._model = settings.model
        self._temperature = settings.temperature
        self._max_output_tokens = settings.max_output_tokens
        self._timeout_s = settings.timeout_s
        self._max_retries = settings.max_retries

    @property
    def name(self) -> str:
        return f"openai:{self._model}"

    def _client_within(self, time_left_s: float | None) -> openai.OpenAI:
        """The client, its timeout and retries cut so that every attempt (each up to the
        timeout, plus a backoff of at most a few seconds) ends before the deadline."""
        if time_left_s is None:
            return self._client
        timeout = min(self._timeout_s, time_left_s)
        fits = int(time_left_s // (timeout + RETRY_BACKOFF_ALLOWANCE_S))
        retries = max(0, min(self._max_retries, fits - 1))
        return self._client.with_options(timeout=timeout, max_retries=retries)

    def complete(
        self, messages: Sequence[ChatMessage], schema: dict[str, Any], time_left_s: float | None
    ) -> ModelReply:
        chat = cast(
            "list[ChatCompletionMessageParam]",
            [{"role": m.role, "content": m.content} for m in messages],
        )
        try:
            completion = self._client_within(time_left_s).chat.completions.create(
                model=self._model,
                messages=chat,
                response_format={
                    "type": "json_schema",
                    "json_schema": {
                        "name": "prtrace_judge_scores",
                        "schema": schema,
                        "strict": True,
                    },
                },
                # Reasoning models refuse a temperature: None leaves it out.
                temperature=openai.omit if self._temperature is None else self._temperature,
                # Bounds the cost of a runaway answer (cut off = rejected, like bad JSON).
                max_completion_tokens=(
                    openai.omit if self._max_output_tokens is None else self._max_output_tokens
                ),
            )
        except openai.APIStatusError as exc:
            raise ModelUnavailable(f"HTTP {exc.status_code} {type(exc).__name__}") from exc
        except (openai.OpenAIError, ValueError) as exc:
            # Connection errors, timeouts, and bodies that are not a chat completion at all
            # (a proxy's HTML page fails JSON decoding with a ValueError).
            raise ModelUnavailable(type(exc).__name__) from exc
        if not completion.choices:
            raise ModelUnavailable("the server answered with no choices")
        choice = completion.choices[0]
        usage = completion.usage
        return ModelReply(
            content=choice.message.content,
            # Some compatible servers omit usage or its fields.
            prompt_tokens=(usage.prompt_tokens or 0) if usage else 0,
            completion_tokens=(usage.completion_tokens or 0) if usage else 0,
            finish_reason=choice.finish_reason,
            refusal=getattr(choice.message, "refusal", None),
        )


@lru_cache(maxsize=4)
def _client(
    api_key: str, base_url: str | None, timeout_s: float, max_retries: int
) -> openai.OpenAI:
    """One client (and connection pool) per configuration, reused by warm invocations; a
    rotated key makes a new one."""
    return openai.OpenAI(
        api_key=api_key, base_url=base_url, timeout=timeout_s, max_retries=max_retries
    )


def resolve_api_key(settings: JudgeSettings) -> str | None:
    """The key from Secrets Manager (raw, or JSON {"api_key": ...}) when a secret is named,
    else OPENAI_API_KEY; None when neither holds one. A named secret that does not exist
    (or is empty) means no key: the stack may name a secret the operator never filled.
    Any other failure to read it is a configuration error, not a reason to go offline."""
    if not settings.openai_secret_name:
        return settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
    try:
        raw = parameters.get_secret(settings.openai_secret_name, max_age=SECRET_MAX_AGE_S)
    except GetParameterError as exc:
        cause = exc.__cause__ or exc.__context__  # Powertools re-raises without `from`
        if isinstance(cause, ClientError) and cause.response.get("Error", {}).get("Code") == (
            "ResourceNotFoundException"
        ):
            return None
        raise ConfigurationError(
            f"OpenAI key secret {settings.openai_secret_name!r} could not be read: "
            f"{type(cause or exc).__name__}"
        ) from None
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    if text.lstrip().startswith("{"):
        try:
            text = str(orjson.loads(text)["api_key"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            raise ConfigurationError(
                'OpenAI key secret is JSON without an "api_key" string'
            ) from None
    return text.strip() or None


def build_llm_judge(settings: JudgeSettings, rubric: Rubric) -> LLMJudge | None:
    """The OpenAI judge, or None for the offline judge (mode offline, or auto with no key)."""
    if settings.mode == "offline":
        return None
    api_key = resolve_api_key(settings)
    if api_key is None:
        if settings.mode == "openai":
            raise ConfigurationError(
                "PRTRACE_JUDGE_MODE=openai needs OPENAI_API_KEY or PRTRACE_OPENAI_SECRET_NAME"
            )
        return None
    client = _client(api_key, settings.openai_base_url, settings.timeout_s, settings.max_retries)
    return LLMJudge(
        OpenAIChatModel(client, settings),
        rubric,
        Pricing(settings.input_usd_per_1m, settings.output_usd_per_1m),
        token_budget=settings.token_budget,
        samples=settings.samples,
        review_spread=settings.review_spread,
    )
