"""Judge configuration from environment variables, validated once at cold start."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from prtrace.judge.prompt import DEFAULT_TOKEN_BUDGET, MIN_TOKEN_BUDGET
from prtrace.settings import EnvSettings

DEFAULT_MODEL = "gpt-4.1-mini"
MAX_MODELS = 5


class JudgeSettings(EnvSettings):
    """PRTRACE_JUDGE_* variables; the model's key and endpoint under OpenAI's own names."""

    model_config = SettingsConfigDict(env_prefix="PRTRACE_JUDGE_")
    used_by: ClassVar[str] = "Judge"

    bucket: Annotated[str | None, Field(validation_alias="PRTRACE_BUCKET")] = None
    mode: Annotated[
        Literal["auto", "openai", "offline"],
        Field(description="auto: the OpenAI judge when an API key is configured, else offline"),
    ] = "auto"
    openai_secret_name: Annotated[
        str | None,
        Field(validation_alias="PRTRACE_OPENAI_SECRET_NAME", description="secret with the key"),
    ] = None
    openai_api_key: Annotated[
        SecretStr | None, Field(validation_alias="OPENAI_API_KEY", description="the key itself")
    ] = None
    openai_base_url: Annotated[
        str | None,
        Field(validation_alias="OPENAI_BASE_URL", description="an OpenAI-compatible server"),
    ] = None
    model: Annotated[str, Field(min_length=1)] = DEFAULT_MODEL
    models: Annotated[
        tuple[Annotated[str, Field(min_length=1)], ...],
        NoDecode,
        Field(
            max_length=MAX_MODELS,
            description="comma-separated: an ensemble of models (wins over PRTRACE_JUDGE_MODEL)",
        ),
    ] = ()
    timeout_s: Annotated[float, Field(gt=0, le=900)] = 60.0
    max_retries: Annotated[int, Field(ge=0, le=10)] = 3
    temperature: Annotated[
        float | None, Field(ge=0, le=2, description="`none`: not sent (models that refuse it)")
    ] = 0.0
    max_output_tokens: Annotated[int | None, Field(ge=256, description="`none`: not sent")] = 4_000
    max_tokens_parameter: Annotated[
        Literal["max_completion_tokens", "max_tokens"],
        Field(description="the request field the output limit is sent in"),
    ] = "max_completion_tokens"
    seed: Annotated[
        int | None,
        Field(
            ge=0, lt=2**31, description="sent as `seed` (+ the sample's index); `none`: not sent"
        ),
    ] = 0
    token_budget: Annotated[
        int, Field(ge=MIN_TOKEN_BUDGET, description="prompt tokens the trace may take")
    ] = DEFAULT_TOKEN_BUDGET
    input_usd_per_1m: Annotated[float, Field(ge=0)] | None = None
    output_usd_per_1m: Annotated[float, Field(ge=0)] | None = None
    samples: Annotated[
        int, Field(ge=1, le=9, description="independent scorings (lower median kept)")
    ] = 1
    review_spread: Annotated[
        int, Field(ge=0, le=5, description="a score spread above this flags the result for review")
    ] = 2

    @field_validator("models", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [name.strip() for name in value.split(",") if name.strip()]
        return value

    @field_validator("models")
    @classmethod
    def _each_once(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError("a model is named twice")
        return value

    @property
    def model_names(self) -> list[str]:
        """The models that judge: PRTRACE_JUDGE_MODELS, else PRTRACE_JUDGE_MODEL."""
        return list(self.models) or [self.model]

    @field_validator("temperature", "max_output_tokens", "seed", mode="before")
    @classmethod
    def _none_leaves_it_out(cls, value: object) -> object:
        # "none" leaves an optional request parameter out (servers and models refuse some).
        return None if isinstance(value, str) and value.lower() == "none" else value
