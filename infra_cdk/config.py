"""Deployment configuration: CDK context (`-c key=value`) first, then PRTRACE_* environment
variables, then defaults; validated before anything is synthesized, so a typo fails the
synth with the name of the bad setting instead of deploying something unintended."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, ClassVar, Final, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import NoDecode

from prtrace.settings import ConfigurationError, EnvSettings
from prtrace.settings_table import markdown

# CloudWatch Logs accepts only these retention periods: days -> the name of CDK's
# `logs.RetentionDays` member for it (lambdas.log_retention).
LOG_RETENTION_DAYS: Final = {
    1: "ONE_DAY", 3: "THREE_DAYS", 5: "FIVE_DAYS", 7: "ONE_WEEK", 14: "TWO_WEEKS",
    30: "ONE_MONTH", 60: "TWO_MONTHS", 90: "THREE_MONTHS", 120: "FOUR_MONTHS",
    150: "FIVE_MONTHS", 180: "SIX_MONTHS", 365: "ONE_YEAR", 400: "THIRTEEN_MONTHS",
    545: "EIGHTEEN_MONTHS", 731: "TWO_YEARS", 1096: "THREE_YEARS", 1827: "FIVE_YEARS",
    2192: "SIX_YEARS", 2557: "SEVEN_YEARS", 2922: "EIGHT_YEARS", 3288: "NINE_YEARS",
    3653: "TEN_YEARS",
}  # fmt: skip

_SECRET_NAME = r"^[A-Za-z0-9/_+=.@-]{1,512}$"  # noqa: S105 - a name pattern

# Fargate's CPU units -> the task memory (MiB) each allows.
FARGATE_MEMORY_MB: Final = {
    256: range(512, 2048 + 1, 512),
    512: range(1024, 4096 + 1, 1024),
    1024: range(2048, 8192 + 1, 1024),
    2048: range(4096, 16384 + 1, 1024),
    4096: range(8192, 30720 + 1, 1024),
}
# The QA state's own timeout (state_machines/trace_pipeline.asl.json): the runner's wall
# clock covers up to four test runs (base, final, held, base with final tests) and the
# dependency step, so it must end inside it.
QA_STATE_TIMEOUT_S: Final = 3600
# The whole pipeline's (the definition's top-level TimeoutSeconds): an execution that runs
# longer is ended as TIMED_OUT, and the execution-end rule records the trace as failed.
PIPELINE_TIMEOUT_S: Final = 3 * 3600
# Plain addresses only: SNS e-mail subscriptions take no display names.
_EMAIL = r"^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,63}$"
# Each function's reserved concurrency; None = it draws from the account's unreserved pool.
FUNCTIONS: Final = ("authorizer", "api", "assemble", "judge", "record", "sweeper")
ReservedConcurrency = Annotated[int, Field(ge=1, le=10_000)] | None


class ConfigError(ConfigurationError, ValueError):
    pass


def _means(description: str) -> Any:
    return Field(description=description)


class StackConfig(EnvSettings):
    """What a deployment is configured with: each setting from CDK context (`-c
    name=value`), else its PRTRACE_<NAME> variable, else its default."""

    used_by: ClassVar[str] = "deploy"

    stage: Annotated[
        str,
        Field(pattern=r"^[a-z][a-z0-9-]{0,15}$"),
        _means("names the stack `prtrace-<stage>`"),
    ] = "dev"
    log_retention_days: Annotated[
        int, _means("Lambda and access log retention (a CloudWatch period)")
    ] = 30
    token_cache_ttl_s: Annotated[
        int,
        Field(ge=0, le=3600),
        _means("authorizer cache per token (0-3600); a revoked token works until it expires"),
    ] = 300
    openai_secret_name: Annotated[
        str, Field(pattern=_SECRET_NAME), _means("the judge's OpenAI key in Secrets Manager")
    ] = "prtrace/openai-api-key"  # noqa: S105
    throttle_rate_rps: Annotated[int, Field(ge=1, le=10_000), _means("stage throttling: rate")] = 50
    throttle_burst: Annotated[int, Field(ge=1, le=5_000), _means("stage throttling: burst")] = 100
    # Dev stages may be torn down completely; anything else keeps its data on stack deletion.
    destroy_data_on_delete: Annotated[
        bool, _means("true: the bucket, tables and key go with the stack")
    ] = False
    alarm_topic_arn: Annotated[
        Annotated[str, Field(pattern=r"^arn:aws[a-z-]*:sns:")] | None,
        _means("an SNS topic the alarms (and the budget) notify instead of the stack's own"),
    ] = None
    # Each address confirms its subscription once, by e-mail.
    alarm_emails: Annotated[
        tuple[Annotated[str, Field(pattern=_EMAIL, max_length=254)], ...],
        NoDecode,
        Field(max_length=20),
        _means("comma-separated addresses on the stack's alarm topic (not with alarm_topic_arn)"),
    ] = ()
    monthly_budget_usd: Annotated[
        float,
        Field(ge=0, le=1_000_000),
        _means("a monthly AWS cost budget (USD) notifying the alarm topic; 0: none"),
    ] = 0
    # The ingestion path keeps capacity however busy the pipeline is; the pipeline steps
    # stay unreserved, since a throttled step fails its trace once Step Functions' retries
    # (about two minutes) run out. Reservations need the account's quota to keep 100
    # unreserved: on a new account with a low quota, set them to "none".
    authorizer_reserved_concurrency: Annotated[
        ReservedConcurrency, _means("reserved concurrency; `none`: unreserved")
    ] = 10
    api_reserved_concurrency: Annotated[ReservedConcurrency, _means("likewise")] = 20
    assemble_reserved_concurrency: Annotated[ReservedConcurrency, _means("likewise")] = None
    judge_reserved_concurrency: Annotated[ReservedConcurrency, _means("likewise")] = None
    record_reserved_concurrency: Annotated[ReservedConcurrency, _means("likewise")] = None
    sweeper_reserved_concurrency: Annotated[
        ReservedConcurrency, _means("likewise (1: sweeps never overlap)")
    ] = 1
    qa_task_cpu: Annotated[
        int, _means("the QA Fargate task's CPU units (a valid Fargate pair)")
    ] = 1024
    # The Dockerfile's PYTHON_IMAGE. No registry is reachable here, so the default cannot
    # carry a verified digest.
    qa_base_image: Annotated[
        str,
        Field(pattern=r"^[a-z0-9][a-z0-9._/-]*(:[A-Za-z0-9._-]+)?(@sha256:[0-9a-f]{64})?$"),
        _means(
            "the QA image's base; pin it as `name:tag@sha256:<digest>` (synth warns about a "
            "tag alone, which can move between deploys)"
        ),
    ] = "python:3.11-slim-bookworm"
    qa_task_memory_mb: Annotated[int, _means("the QA task's memory (MiB)")] = 4096
    qa_wall_timeout_s: Annotated[
        int,
        Field(ge=10, le=QA_STATE_TIMEOUT_S // 5),
        _means("wall clock of each sandboxed test run (10-720)"),
    ] = 600
    judge_mode: Annotated[
        Literal["auto", "openai", "offline"],
        _means("`openai`, `offline`, or `auto` (OpenAI when the secret holds a key)"),
    ] = "auto"
    judge_model: Annotated[
        Annotated[str, Field(pattern=r"^[A-Za-z0-9._:/-]{1,128}$")] | None,
        _means("the judge's model; unset: the judge's default"),
    ] = None
    judge_openai_base_url: Annotated[
        Annotated[str, Field(pattern=r"^https?://")] | None,
        _means("an OpenAI-compatible endpoint instead of OpenAI's"),
    ] = None
    # GET /v1/keys keeps publishing them so the bundles they signed still verify
    # (infra_cdk/provenance.py).
    previous_signing_key_arns: Annotated[
        tuple[
            Annotated[str, Field(pattern=r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[0-9a-f-]+$")],
            ...,
        ],
        NoDecode,
        _means("comma-separated KMS key ARNs of manifest signing keys rotated out"),
    ] = ()

    @field_validator("log_retention_days")
    @classmethod
    def _allowed_retention(cls, value: int) -> int:
        if value not in LOG_RETENTION_DAYS:
            allowed = ", ".join(str(d) for d in sorted(LOG_RETENTION_DAYS))
            raise ValueError(f"must be one of {allowed}")
        return value

    @field_validator("alarm_emails", "previous_signing_key_arns", mode="before")
    @classmethod
    def _email_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator(*(f"{name}_reserved_concurrency" for name in FUNCTIONS), mode="before")
    @classmethod
    def _unreserved(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() in {"", "none"}:
            return None
        return value

    @model_validator(mode="after")
    def _one_alarm_topic(self) -> StackConfig:
        if self.alarm_topic_arn and self.alarm_emails:
            raise ValueError(
                "alarm_emails subscribe the stack's own topic, which alarm_topic_arn replaces: "
                "subscribe those addresses to that topic instead"
            )
        return self

    def reserved_concurrency(self, function: str) -> int | None:
        value: int | None = getattr(self, f"{function}_reserved_concurrency")
        return value

    @model_validator(mode="after")
    def _fargate_size(self) -> StackConfig:
        allowed = FARGATE_MEMORY_MB.get(self.qa_task_cpu)
        if allowed is None:
            raise ValueError(f"qa_task_cpu must be one of {', '.join(map(str, FARGATE_MEMORY_MB))}")
        if self.qa_task_memory_mb not in allowed:
            raise ValueError(
                f"qa_task_memory_mb {self.qa_task_memory_mb} does not fit qa_task_cpu "
                f"{self.qa_task_cpu} (Fargate allows {allowed.start}-{allowed.stop - 1} "
                f"in steps of {allowed.step})"
            )
        return self

    @property
    def prefix(self) -> str:
        return f"prtrace-{self.stage}"

    @classmethod
    def variable_at(cls, loc: Sequence[int | str]) -> str:
        """A bad setting is named as it is given: its context name or its variable."""
        name = str(loc[0]) if loc else ""
        if name not in cls.model_fields:
            return name
        return f"{name} (-c {name}= or {cls.variable(name)})"

    @classmethod
    def resolve(cls, context: dict[str, Any]) -> StackConfig:
        """Context wins over PRTRACE_<NAME> variables; pydantic's lax mode turns their
        strings into numbers and booleans, and rejects what is neither."""
        try:
            return cls.from_env(**context)
        except ConfigurationError as error:
            raise ConfigError(f"deployment: {error}") from None


class BuildSettings(EnvSettings):
    """How this machine builds and runs the stack (not part of a deployment's settings)."""

    used_by: ClassVar[str] = "synth, the local cloud"

    lambda_deps: Annotated[
        Literal["build", "skip"],
        _means("skip: synthesize without building the Lambda dependency layer (tests)"),
    ] = "build"
    local_qa_backend: Annotated[
        Literal["bwrap", "docker"],
        _means("the sandbox the local cloud's QA task runs tests in"),
    ] = "bwrap"


SETTINGS_MODELS: Final[tuple[type[EnvSettings], ...]] = (StackConfig, BuildSettings)
TABLE_BEGIN: Final = "<!-- deployment settings: generated by `python -m infra_cdk.config` -->"
TABLE_END: Final = "<!-- end of the generated deployment settings -->"


def settings_table() -> str:
    """The README's table of these settings (tests/unit/test_settings.py keeps it current)."""
    return markdown(SETTINGS_MODELS, TABLE_BEGIN, TABLE_END)


if __name__ == "__main__":
    print(settings_table())
