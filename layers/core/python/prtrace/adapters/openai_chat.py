"""The judge's chat model through the `openai` SDK: any OpenAI-compatible server works
(OpenAI, Azure-style gateways, vLLM, Ollama, a test double) given its base URL.

The SDK retries connection errors, timeouts, 408/409/429 and 5xx answers with exponential
backoff and jitter (honouring Retry-After), `max_retries` times, each request bounded by
`timeout_s`. Whatever still fails is `ModelUnavailable`; the judge then falls back.

The body of a 200 answer is read here, at most `MAX_REPLY_BYTES`, and checked by hand: the
SDK hands back whatever a proxy sent (an HTML error page comes back as a `str`), and an
exception escaping the Lambda would make Step Functions retry a paid call. Anything that is
not a chat completion is `ModelUnavailable`, with a cut, redacted excerpt of what came back.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Final, cast

import httpx
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
# A judge answer of 4,000 tokens is ~20 KB: a body past this is not an answer.
MAX_REPLY_BYTES: Final = 1_048_576
EXCERPT_CHARS: Final = 200
# Key-like strings a proxy page might echo back (the configured key is redacted as well).
_SECRET_LIKE: Final = re.compile(r"(?i)(bearer\s+)\S+|\b(sk|key|token)-[\w-]{6,}")


def excerpt(body: bytes, secrets: Sequence[str] = ()) -> str:
    """A short, one-line, printable quote of a body, secrets and key-like strings masked."""
    text = body[: EXCERPT_CHARS * 4].decode("utf-8", errors="replace")
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    text = _SECRET_LIKE.sub(lambda m: (m[1] or "") + "***", text)
    text = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return repr(text[:EXCERPT_CHARS] + ("…" if len(text) > EXCERPT_CHARS else ""))


def _as_int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def parse_completion(body: bytes, content_type: str, secrets: Sequence[str] = ()) -> ModelReply:
    """The reply in a chat completion's JSON body; ModelUnavailable saying what came back
    when the body is not one (HTML, empty, JSON of another shape)."""
    what = f"{content_type or 'no content type'}, {len(body):,} bytes"
    if not body.strip():
        raise ModelUnavailable(f"HTTP 200 with an empty body ({what})")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ModelUnavailable(
            f"HTTP 200 body is not JSON ({what}): {excerpt(body, secrets)}"
        ) from None
    if not isinstance(data, dict):
        raise ModelUnavailable(
            f"HTTP 200 body is a JSON {type(data).__name__}, not a chat completion ({what}): "
            f"{excerpt(body, secrets)}"
        )
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices:
        shape = "no" if choices is None else f"empty or non-list ({type(choices).__name__})"
        raise ModelUnavailable(
            f"HTTP 200 body has {shape} `choices` ({what}): {excerpt(body, secrets)}"
        )
    choice = choices[0]
    message = choice.get("message") if isinstance(choice, dict) else None
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(message, dict) or not isinstance(content, str | None):
        raise ModelUnavailable(
            f"HTTP 200 body's first choice has no message with text content ({what}): "
            f"{excerpt(body, secrets)}"
        )
    assert isinstance(choice, dict)  # checked above: a message was found in it
    usage = data.get("usage")
    usage = usage if isinstance(usage, dict) else {}  # some compatible servers omit it
    finish_reason = choice.get("finish_reason")
    refusal = message.get("refusal")
    return ModelReply(
        content=content,
        prompt_tokens=_as_int(usage.get("prompt_tokens")),
        completion_tokens=_as_int(usage.get("completion_tokens")),
        finish_reason=finish_reason if isinstance(finish_reason, str) else None,
        refusal=refusal if isinstance(refusal, str) and refusal else None,
    )


class OpenAIChatModel:
    def __init__(
        self, client: openai.OpenAI, settings: JudgeSettings, model: str | None = None
    ) -> None:
        self._client = client
        self._model = model or settings.model
        self._temperature = settings.temperature
        self._max_output_tokens = settings.max_output_tokens
        self._max_tokens_parameter = settings.max_tokens_parameter
        self._seed = settings.seed
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
        self,
        messages: Sequence[ChatMessage],
        schema: dict[str, Any],
        time_left_s: float | None,
        sample: int = 0,
    ) -> ModelReply:
        chat = cast(
            "list[ChatCompletionMessageParam]",
            [{"role": m.role, "content": m.content} for m in messages],
        )
        limit = openai.omit if self._max_output_tokens is None else self._max_output_tokens
        deadline = None if time_left_s is None else time.monotonic() + time_left_s
        secrets = [self._client.api_key]
        try:
            with self._client_within(time_left_s).chat.completions.with_streaming_response.create(
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
                # Some compatible servers know only the older `max_tokens`.
                max_completion_tokens=(
                    limit if self._max_tokens_parameter == "max_completion_tokens" else openai.omit
                ),
                max_tokens=limit if self._max_tokens_parameter == "max_tokens" else openai.omit,
                # Best-effort reproducibility; each ensemble sample gets its own seed, or
                # sampled answers would all be the same answer.
                seed=openai.omit if self._seed is None else self._seed + sample,
            ) as response:
                content_type = response.headers.get("content-type", "")
                body = _read_capped(response.iter_bytes(), deadline)
        except openai.APIStatusError as exc:
            detail = excerpt(exc.message.encode(), secrets)
            raise ModelUnavailable(
                f"HTTP {exc.status_code} {type(exc).__name__}: {detail}"
            ) from exc
        except (openai.OpenAIError, httpx.HTTPError, OSError, ValueError) as exc:
            # Connection errors and timeouts, before or while the body arrives.
            raise ModelUnavailable(type(exc).__name__) from exc
        return parse_completion(body, content_type.split(";")[0].strip(), secrets)


def _read_capped(chunks: Iterator[bytes], deadline: float | None) -> bytes:
    """The body, unless it grows past MAX_REPLY_BYTES or is still arriving at the deadline
    (each read is bounded by the client's timeout, a slow trickle is not)."""
    body = bytearray()
    for chunk in chunks:
        body += chunk
        if len(body) > MAX_REPLY_BYTES:
            raise ModelUnavailable(f"HTTP 200 body is larger than {MAX_REPLY_BYTES:,} bytes")
        if deadline is not None and time.monotonic() > deadline:
            raise ModelUnavailable("the answer was still arriving at the deadline")
    return bytes(body)


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
        [OpenAIChatModel(client, settings, model) for model in settings.model_names],
        rubric,
        Pricing(settings.input_usd_per_1m, settings.output_usd_per_1m),
        token_budget=settings.token_budget,
        samples=settings.samples,
        review_spread=settings.review_spread,
    )
