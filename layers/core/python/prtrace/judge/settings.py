"""Judge configuration from environment variables, validated once at cold start."""

from __future__ import annotations

import os
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from prtrace.judge.prompt import DEFAULT_TOKEN_BUDGET, MIN_TOKEN_BUDGET
from prtrace.settings import ConfigurationError

DEFAULT_MODEL = "gpt-4.1-mini"


class JudgeSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    bucket: str | None = None
    # auto: the OpenAI judge when an API key is configured, else the offline judge.
    mode: Literal["auto", "openai", "offline"] = "auto"
    openai_secret_name: str | None = None
    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    model: Annotated[str, Field(min_length=1)] = DEFAULT_MODEL
    timeout_s: Annotated[float, Field(gt=0, le=900)] = 60.0
    max_retries: Annotated[int, Field(ge=0, le=10)] = 3
    temperature: Annotated[float, Field(ge=0, le=2)] | None = 0.0
    max_output_tokens: Annotated[int, Field(ge=256)] | None = 4_000
    token_budget: Annotated[int, Field(ge=MIN_TOKEN_BUDGET)] = DEFAULT_TOKEN_BUDGET
    input_usd_per_1m: Annotated[float, Field(ge=0)] | None = None
    output_usd_per_1m: Annotated[float, Field(ge=0)] | None = None
    samples: Annotated[int, Field(ge=1, le=9)] = 1
    review_spread: Annotated[int, Field(ge=0, le=5)] = 2

    @classmethod
    def from_env(cls) -> JudgeSettings:
        env = os.environ
        names = {
            "bucket": "PRTRACE_BUCKET",
            "mode": "PRTRACE_JUDGE_MODE",
            "openai_secret_name": "PRTRACE_OPENAI_SECRET_NAME",
            "openai_api_key": "OPENAI_API_KEY",
            "openai_base_url": "OPENAI_BASE_URL",
            "model": "PRTRACE_JUDGE_MODEL",
            "timeout_s": "PRTRACE_JUDGE_TIMEOUT_S",
            "max_retries": "PRTRACE_JUDGE_MAX_RETRIES",
            "temperature": "PRTRACE_JUDGE_TEMPERATURE",
            "max_output_tokens": "PRTRACE_JUDGE_MAX_OUTPUT_TOKENS",
            "token_budget": "PRTRACE_JUDGE_TOKEN_BUDGET",
            "input_usd_per_1m": "PRTRACE_JUDGE_INPUT_USD_PER_1M",
            "output_usd_per_1m": "PRTRACE_JUDGE_OUTPUT_USD_PER_1M",
            "samples": "PRTRACE_JUDGE_SAMPLES",
            "review_spread": "PRTRACE_JUDGE_REVIEW_SPREAD",
        }
        # Unset or empty variables take the defaults; "none" leaves an optional request
        # parameter out (servers and models that refuse it).
        values: dict[str, object] = {k: env[v] for k, v in names.items() if env.get(v)}
        for optional in ("temperature", "max_output_tokens"):
            if str(values.get(optional, "")).lower() == "none":
                values[optional] = None
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            bad = ", ".join(names[str(e["loc"][0])] for e in exc.errors())
            raise ConfigurationError(f"invalid judge configuration: {bad}") from None
