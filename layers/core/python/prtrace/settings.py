"""Runtime configuration from environment variables, validated once at cold start."""

from __future__ import annotations

import os
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class ConfigurationError(RuntimeError):
    pass


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    traces_table: Annotated[str, Field(min_length=3)]
    tokens_table: Annotated[str, Field(min_length=3)]
    idempotency_table: Annotated[str, Field(min_length=3)]
    bucket: Annotated[str, Field(min_length=3)]
    key_secret_name: str | None = None
    key_parameter_name: str | None = None
    # Presigned upload URLs must name an endpoint the *client* reaches (local cloud only).
    public_s3_endpoint: str | None = None
    upload_url_ttl_s: Annotated[int, Field(ge=60, le=3600)] = 900
    download_url_ttl_s: Annotated[int, Field(ge=60, le=3600)] = 300
    # The pipeline finalize starts; unset, finalized traces wait (ingestion alone).
    state_machine_arn: Annotated[str, Field(pattern=r"^arn:aws[a-z-]*:states:")] | None = None
    # The manifest signing keys GET /v1/keys publishes: the current one first, then every
    # earlier one (rotation keeps them listed so older bundles still verify).
    signing_key_ids: tuple[str, ...] = ()

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        values = {
            "traces_table": env.get("PRTRACE_TRACES_TABLE", ""),
            "tokens_table": env.get("PRTRACE_TOKENS_TABLE", ""),
            "idempotency_table": env.get("PRTRACE_IDEMPOTENCY_TABLE", ""),
            "bucket": env.get("PRTRACE_BUCKET", ""),
            "key_secret_name": env.get("PRTRACE_KEY_SECRET_NAME") or None,
            "key_parameter_name": env.get("PRTRACE_KEY_PARAMETER_NAME") or None,
            "public_s3_endpoint": env.get("PRTRACE_PUBLIC_S3_ENDPOINT") or None,
            "upload_url_ttl_s": _integer(env, "PRTRACE_UPLOAD_URL_TTL_S", 900),
            "download_url_ttl_s": _integer(env, "PRTRACE_DOWNLOAD_URL_TTL_S", 300),
            "state_machine_arn": env.get("PRTRACE_STATE_MACHINE_ARN") or None,
            "signing_key_ids": tuple(
                k.strip() for k in env.get("PRTRACE_SIGNING_KEY_IDS", "").split(",") if k.strip()
            ),
        }
        try:
            return cls(**values)
        except ValidationError as exc:
            names = ", ".join(str(e["loc"][0]) for e in exc.errors())
            raise ConfigurationError(f"invalid or missing configuration: {names}") from None


class RecordSettings(BaseModel):
    """The Record step needs the traces table and the data bucket, nothing else."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    traces_table: Annotated[str, Field(min_length=3)]
    bucket: Annotated[str, Field(min_length=3)]
    # The KMS key (id, ARN or alias) that signs trace manifests; unset: none are signed.
    signing_key_id: str | None = None
    qa_image: str | None = None  # the QA task's image, named in the manifest

    @classmethod
    def from_env(cls) -> RecordSettings:
        env = os.environ
        try:
            return cls(
                traces_table=env.get("PRTRACE_TRACES_TABLE", ""),
                bucket=env.get("PRTRACE_BUCKET", ""),
                signing_key_id=env.get("PRTRACE_SIGNING_KEY_ID") or None,
                qa_image=env.get("PRTRACE_QA_IMAGE") or None,
            )
        except ValidationError as exc:
            names = ", ".join(str(e["loc"][0]) for e in exc.errors())
            raise ConfigurationError(f"invalid or missing configuration: {names}") from None


class SweeperSettings(RecordSettings):
    """The sweeper ends traces the pipeline left in progress longer than `stuck_after_s`
    after finalize (longer than any execution may run)."""

    stuck_after_s: Annotated[int, Field(ge=60)]

    @classmethod
    def from_env(cls) -> SweeperSettings:
        record = RecordSettings.from_env()
        env = os.environ
        try:
            return cls(
                **record.model_dump(),
                stuck_after_s=_integer(env, "PRTRACE_STUCK_AFTER_S", 4 * 3600),
            )
        except ValidationError as exc:
            names = ", ".join(str(e["loc"][0]) for e in exc.errors())
            raise ConfigurationError(f"invalid or missing configuration: {names}") from None


def _integer(env: os._Environ[str], name: str, default: int) -> int:
    raw = env.get(name) or str(default)
    try:
        return int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be an integer, got {raw[:40]!r}") from None


def tokens_table_from_env() -> str:
    """The authorizer and the CLI need only the tokens table."""
    name = os.environ.get("PRTRACE_TOKENS_TABLE", "")
    if not name:
        raise ConfigurationError("PRTRACE_TOKENS_TABLE is not set")
    return name
