"""Deployment configuration: CDK context (`-c key=value`) first, then PRTRACE_* environment
variables, then defaults; validated before anything is synthesized, so a typo fails the
synth with the name of the bad setting instead of deploying something unintended."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, ClassVar, Final, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import NoDecode

from prtrace.pipeline.settings_table import markdown
from prtrace.settings import ConfigurationError, EnvSettings

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
QA_BASE_IMAGE: Final = (
    "python:3.11-slim-bookworm"
    "@sha256:0bee7276f83efd4a1ee05bbbf4281d95ed28e079220a9457f25a93e3f1e3c31b"
)
# Each function's reserved concurrency; None = it draws from the account's unreserved pool.
FUNCTIONS: Final = ("authorizer", "api", "assemble", "judge", "record", "sweeper")
ReservedConcurrency = Annotated[int, Field(ge=1, le=10_000)] | None


# Stage profiles: what a stage is for decides the defaults of the settings below; a
# setting given explicitly (context or variable) still wins. `prod` is the profile of the
# stage named `prod` or `prod-<anything>`; every other stage is `dev`.
StageProfile = Literal["dev", "prod"]
PROFILE_DEFAULTS: Final[dict[str, dict[StageProfile, Any]]] = {
    "log_retention_days": {"dev": 30, "prod": 365},
    "throttle_rate_rps": {"dev": 20, "prod": 50},
    "throttle_burst": {"dev": 40, "prod": 100},
    "require_alarm_delivery": {"dev": False, "prod": True},
    "monthly_budget_usd": {"dev": 0, "prod": 500},
    "judge_mode": {"dev": "auto", "prod": "openai"},
    "judge_daily_token_budget": {"dev": 2_000_000, "prod": 30_000_000},
    "data_retention_days": {"dev": 90, "prod": 0},
    "object_lock_mode": {"dev": "none", "prod": "governance"},
    "deletion_protection": {"dev": False, "prod": True},
    "backup_plan": {"dev": False, "prod": True},
}
# Tag values AWS accepts (letters, digits, spaces and _ . : / = + - @).
_TAG_VALUE = r"^[A-Za-z0-9_ .:/=+@-]{1,256}$"
_PREFIX_LIST = r"^pl-[0-9a-f]{8,17}$"  # an AWS-managed prefix list id


def stage_profile_of(stage: str) -> StageProfile:
    return "prod" if stage == "prod" or stage.startswith("prod-") else "dev"


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
    stage_profile: Annotated[
        StageProfile | None,
        _means(
            "which defaults apply (`dev: … · prod: …` in this table); unset: `prod` for a "
            "stage `prod` or `prod-*`, else `dev`"
        ),
    ] = None
    owner: Annotated[
        Annotated[str, Field(pattern=_TAG_VALUE)] | None,
        _means("tags every resource `owner=<value>` (a team or an address)"),
    ] = None
    cost_centre: Annotated[
        Annotated[str, Field(pattern=_TAG_VALUE)] | None,
        _means("tags every resource `cost-centre=<value>`"),
    ] = None
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
    throttle_rate_rps: Annotated[int, Field(ge=1, le=10_000), _means("stage throttling: rate")] = 20
    throttle_burst: Annotated[int, Field(ge=1, le=5_000), _means("stage throttling: burst")] = 40
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
    # A prod stage whose alarms reach nobody fails the synth (_alarms_reach_someone).
    require_alarm_delivery: Annotated[
        bool, _means("true: the synth fails unless alarm_emails or alarm_topic_arn is set")
    ] = False
    judge_daily_token_budget: Annotated[
        int,
        Field(ge=0, le=10_000_000_000),
        _means(
            "the judge's model tokens (prompt + completion) in 24 h that raise an alarm; 0: none"
        ),
    ] = 2_000_000
    # Evidence: the data bucket's objects (traces, QA reports, judge results, manifests).
    object_lock_mode: Annotated[
        Literal["none", "governance", "compliance"],
        _means(
            "S3 Object Lock on new objects: `governance` (an operator allowed "
            "s3:BypassGovernanceRetention may delete), `compliance` (nobody, not even root, "
            "until it ends), `none`"
        ),
    ] = "none"
    object_lock_days: Annotated[
        int, Field(ge=1, le=36_500), _means("how long Object Lock keeps each object (days)")
    ] = 365
    data_retention_days: Annotated[
        int,
        Field(ge=0, le=36_500),
        _means(
            "objects expire this many days after they were written (never before their lock "
            "ends); 0: kept until deleted"
        ),
    ] = 90
    data_encryption: Annotated[
        Literal["aws-managed", "customer-managed"],
        _means(
            "the bucket's and tables' keys: `aws-managed` (SSE-S3 and DynamoDB's own) or a "
            "`customer-managed` KMS key the stack creates (about $1/month plus requests)"
        ),
    ] = "aws-managed"
    deletion_protection: Annotated[
        bool, _means("DynamoDB deletion protection on the traces and tokens tables")
    ] = False
    backup_plan: Annotated[
        bool, _means("an AWS Backup plan: the traces and tokens tables, daily")
    ] = False
    backup_retention_days: Annotated[
        int, Field(ge=1, le=36_500), _means("how long each daily backup is kept (days)")
    ] = 35
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
    # The Dockerfile's PYTHON_IMAGE: the official image's multi-platform index as
    # docker-library/repo-info recorded it (repos/python/remote/3.11-slim-bookworm.md,
    # Python 3.11.16, August 2026); `make images` says how to move it.
    qa_base_image: Annotated[
        str,
        Field(pattern=r"^[a-z0-9][a-z0-9._/-]*(:[A-Za-z0-9._-]+)?(@sha256:[0-9a-f]{64})?$"),
        _means(
            "the QA image's base; pin it as `name:tag@sha256:<digest>` (synth warns about a "
            "tag alone, which can move between deploys)"
        ),
    ] = QA_BASE_IMAGE
    qa_task_memory_mb: Annotated[int, _means("the QA task's memory (MiB)")] = 4096
    qa_wall_timeout_s: Annotated[
        int,
        Field(ge=10, le=QA_STATE_TIMEOUT_S // 5),
        _means("wall clock of each sandboxed test run (10-720)"),
    ] = 600
    qa_package_proxy: Annotated[
        bool,
        _means(
            "a CodeArtifact PyPI proxy the QA task's dependency step installs from (through "
            "the VPC); false: the task installs nothing (the local cloud: no CodeArtifact)"
        ),
    ] = True
    s3_prefix_list_id: Annotated[
        Annotated[str, Field(pattern=_PREFIX_LIST)] | None,
        _means(
            "the region's AWS-managed S3 prefix list (`aws ec2 describe-managed-prefix-lists "
            "--filters Name=prefix-list-name,Values=com.amazonaws.<region>.s3`): the QA and "
            "export tasks' HTTPS to S3 goes to it only; unset: to any address (synth warns; "
            "the subnets still route nowhere but the S3 endpoint)"
        ),
    ] = None
    dynamodb_prefix_list_id: Annotated[
        Annotated[str, Field(pattern=_PREFIX_LIST)] | None,
        _means("likewise, DynamoDB's (`com.amazonaws.<region>.dynamodb`), for the export task"),
    ] = None
    judge_mode: Annotated[
        Literal["auto", "openai", "offline"],
        _means("`openai`, `offline`, or `auto` (OpenAI when the secret holds a key)"),
    ] = "auto"
    judge_model: Annotated[
        Annotated[str, Field(pattern=r"^[A-Za-z0-9._:/-]{1,128}$")] | None,
        _means("the judge's model; unset: the judge's default"),
    ] = None
    judge_models: Annotated[
        tuple[Annotated[str, Field(pattern=r"^[A-Za-z0-9._:/-]{1,128}$")], ...],
        NoDecode,
        Field(max_length=5),
        _means("comma-separated models judging together (disagreement flags for review)"),
    ] = ()
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

    @field_validator("alarm_emails", "previous_signing_key_arns", "judge_models", mode="before")
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

    @model_validator(mode="before")
    @classmethod
    def _profile_defaults(cls, data: Any) -> Any:
        """Each setting the profile decides and nobody gave takes the profile's value."""
        if not isinstance(data, dict):
            return data
        profile = data.get("stage_profile") or stage_profile_of(str(data.get("stage", "dev")))
        if profile not in ("dev", "prod"):
            return data  # the field's own validation names the bad value
        given = {name for name, value in data.items() if value is not None}
        return data | {
            name: values[profile] for name, values in PROFILE_DEFAULTS.items() if name not in given
        }

    @property
    def profile(self) -> StageProfile:
        return self.stage_profile or stage_profile_of(self.stage)

    @model_validator(mode="after")
    def _alarms_reach_someone(self) -> StackConfig:
        if self.require_alarm_delivery and not (self.alarm_topic_arn or self.alarm_emails):
            raise ValueError(
                f"stage {self.stage!r} (profile {self.profile}) needs its alarms delivered: "
                f"set alarm_emails (-c alarm_emails=a@example.com or "
                f"{self.variable('alarm_emails')}) or alarm_topic_arn (-c alarm_topic_arn=arn:"
                f"aws:sns:... or {self.variable('alarm_topic_arn')}), or "
                "require_alarm_delivery=false to deploy without"
            )
        return self

    @model_validator(mode="after")
    def _evidence_outlives_its_lock(self) -> StackConfig:
        locked = self.object_lock_mode != "none"
        if locked and 0 < self.data_retention_days < self.object_lock_days:
            raise ValueError(
                f"data_retention_days {self.data_retention_days} is shorter than "
                f"object_lock_days {self.object_lock_days}: objects would be due to expire "
                "while still locked; raise data_retention_days or set it to 0 (kept)"
            )
        return self

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
    """docs/configuration.md's table of these settings (tests/unit/test_settings.py keeps it
    current): a setting a stage profile decides shows each profile's default."""
    lines = markdown(SETTINGS_MODELS, TABLE_BEGIN, TABLE_END).split("\n")
    by_variable = {StackConfig.variable(name): values for name, values in PROFILE_DEFAULTS.items()}
    for index, line in enumerate(lines):
        cells = line.split(" | ")
        values = by_variable.get(cells[0].removeprefix("| ").strip("`"))
        if values is not None:
            cells[2] = " · ".join(f"{p}: `{_shown(v)}`" for p, v in values.items())
            lines[index] = " | ".join(cells)
    return "\n".join(lines)


def _shown(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


if __name__ == "__main__":
    print(settings_table())
