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
            "upload_url_ttl_s": int(env.get("PRTRACE_UPLOAD_URL_TTL_S", "900")),
        }
        try:
            return cls(**values)
        except ValidationError as exc:
            names = ", ".join(str(e["loc"][0]) for e in exc.errors())
            raise ConfigurationError(f"invalid or missing configuration: {names}") from None


def tokens_table_from_env() -> str:
    """The authorizer and the CLI need only the tokens table."""
    name = os.environ.get("PRTRACE_TOKENS_TABLE", "")
    if not name:
        raise ConfigurationError("PRTRACE_TOKENS_TABLE is not set")
    return name
