"""Assemble configuration from environment variables, validated once at cold start."""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import Field

from prtrace.settings import EnvSettings, TableName


class AssembleSettings(EnvSettings):
    used_by: ClassVar[str] = "Assemble"

    traces_table: TableName
    bucket: Annotated[str, Field(min_length=3)]
    key_secret_name: str | None = None
    key_parameter_name: str | None = None
    spool_dir: Annotated[
        str | None,
        Field(
            validation_alias="PRTRACE_ASSEMBLE_SPOOL_DIR",
            description="where the document is written before upload (default: /tmp)",
        ),
    ] = None
