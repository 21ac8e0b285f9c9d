"""Runtime configuration from environment variables, validated once at cold start.

Every settings model of the service is an `EnvSettings` (pydantic-settings): a field
`bucket` is read from `PRTRACE_BUCKET` (the model's prefix plus the field's name, or the
field's `validation_alias` when it has its own variable), empty variables count as unset,
and a bad or missing value is a `ConfigurationError` naming the variables, never their
values (some are secrets). docs/configuration.md's table is generated from these
models (`python -m prtrace.settings`; tests/unit/test_settings.py keeps it current).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, ClassVar, Self

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class ConfigurationError(RuntimeError):
    pass


class EnvSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PRTRACE_",
        env_ignore_empty=True,
        extra="forbid",
        frozen=True,
        populate_by_name=True,
    )
    # Who reads these variables (the table of docs/configuration.md).
    used_by: ClassVar[str] = ""

    @classmethod
    def variable(cls, field: str) -> str:
        """The environment variable a field is read from."""
        alias = cls.model_fields[field].validation_alias
        if isinstance(alias, str):
            return alias
        return f"{cls.model_config.get('env_prefix', '')}{field}".upper()

    @classmethod
    def variable_at(cls, loc: Sequence[int | str]) -> str:
        """The variable behind a validation error's location."""
        name = str(loc[0]) if loc else ""
        return cls.variable(name) if name in cls.model_fields else name

    @classmethod
    def from_env(cls, **overrides: Any) -> Self:
        """The environment's values (`overrides`, by field name, win), validated."""
        try:
            return cls(**overrides)
        except ValidationError as exc:
            problems = {f"{cls.variable_at(e['loc'])} ({e['msg']})": None for e in exc.errors()}
            raise ConfigurationError(
                f"invalid or missing configuration: {', '.join(problems)}"
            ) from None


TableName = Annotated[str, Field(min_length=3)]


class Settings(EnvSettings):
    """The API function."""

    used_by: ClassVar[str] = "API"

    traces_table: Annotated[TableName, Field(description="DynamoDB: traces and chunks")]
    tokens_table: Annotated[TableName, Field(description="DynamoDB: API tokens")]
    idempotency_table: Annotated[TableName, Field(description="DynamoDB: POST idempotency")]
    bucket: Annotated[str, Field(min_length=3, description="the data bucket")]
    key_secret_name: Annotated[
        str | None, Field(description="the integrity key ring's secret (or the parameter below)")
    ] = None
    key_parameter_name: Annotated[str | None, Field(description="SSM parameter alternative")] = None
    public_s3_endpoint: Annotated[
        str | None,
        Field(description="local cloud only: the S3 endpoint presigned URLs name for clients"),
    ] = None
    upload_url_ttl_s: Annotated[
        int, Field(ge=60, le=3600, description="seconds a presigned upload URL is valid")
    ] = 900
    download_url_ttl_s: Annotated[
        int, Field(ge=60, le=3600, description="seconds a presigned download link is valid")
    ] = 300
    state_machine_arn: Annotated[
        str | None,
        Field(
            pattern=r"^arn:aws[a-z-]*:states:",
            description="the pipeline finalize starts; unset, finalized traces wait",
        ),
    ] = None
    export_state_machine_arn: Annotated[
        str | None,
        Field(
            pattern=r"^arn:aws[a-z-]*:states:",
            description="the dataset export job POST /v1/exports starts; unset: 503",
        ),
    ] = None
    signing_key_ids: Annotated[
        tuple[str, ...],
        NoDecode,
        Field(
            description="comma-separated: the manifest signing keys GET /v1/keys lists, the "
            "current one first (rotation keeps earlier ones so older bundles still verify)"
        ),
    ] = ()

    @field_validator("signing_key_ids", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(key.strip() for key in value.split(",") if key.strip())
        return value


class _SignedStoreSettings(EnvSettings):
    """The traces table, the data bucket and the manifest signing key."""

    traces_table: TableName
    bucket: Annotated[str, Field(min_length=3)]
    signing_key_id: Annotated[
        str | None,
        Field(description="the KMS key (id, ARN or alias) signing manifests; unset: none"),
    ] = None


class RecordSettings(_SignedStoreSettings):
    """The Record step needs the traces table and the data bucket, nothing else."""

    used_by: ClassVar[str] = "Record"
    qa_image: Annotated[
        str | None, Field(description="the QA task's image, named in the manifest")
    ] = None


class ExportJobSettings(_SignedStoreSettings):
    """The dataset export task: reads the traces table and the data bucket, writes the
    export under the tenant's exports prefix, signs its manifest when a key is set."""

    used_by: ClassVar[str] = "export task"

    export_tenant: Annotated[str, Field(min_length=1, description="the export's tenant")]
    export_id: Annotated[
        str, Field(pattern=r"^ex_[0-9A-HJKMNP-TV-Z]{26}$", description="the export to make")
    ]


class SweeperSettings(RecordSettings):
    """The sweeper ends traces the pipeline left in progress longer than `stuck_after_s`
    after finalize (longer than any execution may run)."""

    used_by: ClassVar[str] = "Sweeper"

    stuck_after_s: Annotated[
        int, Field(ge=60, description="seconds after finalize a trace counts as stuck")
    ] = 4 * 3600


class TokensSettings(EnvSettings):
    """The authorizer and `prtrace tokens` need only the tokens table."""

    used_by: ClassVar[str] = "authorizer, `prtrace tokens`"

    tokens_table: Annotated[str, Field(min_length=1)]


class QuerySettings(EnvSettings):
    """`prtrace query` reads the tenant's traces table from the data bucket."""

    used_by: ClassVar[str] = "`prtrace query`"

    bucket: Annotated[str, Field(min_length=3)]


def tokens_table_from_env() -> str:
    return TokensSettings.from_env().tokens_table
