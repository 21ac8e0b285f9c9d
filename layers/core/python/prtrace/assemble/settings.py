"""Assemble configuration from environment variables, validated once at cold start."""

from __future__ import annotations

import os
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from prtrace.settings import ConfigurationError


class AssembleSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    traces_table: Annotated[str, Field(min_length=3)]
    bucket: Annotated[str, Field(min_length=3)]
    key_secret_name: str | None = None
    key_parameter_name: str | None = None
    spool_dir: str | None = None  # where the document is written before upload (/tmp)

    @classmethod
    def from_env(cls) -> AssembleSettings:
        env = os.environ
        names = {
            "traces_table": "PRTRACE_TRACES_TABLE",
            "bucket": "PRTRACE_BUCKET",
            "key_secret_name": "PRTRACE_KEY_SECRET_NAME",
            "key_parameter_name": "PRTRACE_KEY_PARAMETER_NAME",
            "spool_dir": "PRTRACE_ASSEMBLE_SPOOL_DIR",
        }
        values = {field: env.get(name) or None for field, name in names.items()}
        values["traces_table"] = values["traces_table"] or ""
        values["bucket"] = values["bucket"] or ""
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            bad = ", ".join(names[str(e["loc"][0])] for e in exc.errors())
            raise ConfigurationError(f"invalid or missing configuration: {bad}") from None
