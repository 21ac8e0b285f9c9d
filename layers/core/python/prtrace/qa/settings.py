"""QA configuration: PRTRACE_QA_* variables (the sandbox backend: PRTRACE_SANDBOX_BACKEND),
read by the QA task's entry point and `prtrace qa`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, ClassVar, Final, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from prtrace.qa.archive import ArchiveLimits
from prtrace.qa.package_index import CODEARTIFACT_USER, PackageIndex, check_index_url
from prtrace.qa.sandbox import SandboxLimits
from prtrace.schema import artifact_uri
from prtrace.settings import EnvSettings
from prtrace.snapshot_media import TAR

BackendName = Literal["bwrap", "docker", "container"]

# The sandbox limits are flat variables, not one JSON value.
LIMIT_VARIABLES: Final = {
    "wall_timeout_s": "PRTRACE_QA_WALL_TIMEOUT_S",
    "memory_mb": "PRTRACE_QA_MEMORY_MB",
    "pids": "PRTRACE_QA_PIDS",
    "cpus": "PRTRACE_QA_CPUS",
}


class _FlatLimits(PydanticBaseSettingsSource):
    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        limits = {
            name: os.environ[var] for name, var in LIMIT_VARIABLES.items() if os.environ.get(var)
        }
        return {"limits": limits} if limits else {}


class QASettings(EnvSettings):
    model_config = SettingsConfigDict(env_prefix="PRTRACE_QA_")
    used_by: ClassVar[str] = "QA task, `prtrace qa`"

    backend: Annotated[BackendName, Field(validation_alias="PRTRACE_SANDBOX_BACKEND")] = "bwrap"
    limits: Annotated[
        SandboxLimits, Field(description="PRTRACE_QA_WALL_TIMEOUT_S, _MEMORY_MB, _PIDS, _CPUS")
    ] = SandboxLimits()
    # Dependency preparation gets its own, longer clock and memory.
    prepare_limits: SandboxLimits = SandboxLimits(wall_timeout_s=900, memory_mb=2048, pids=512)
    per_test_timeout_s: Annotated[int, Field(ge=1)] = 120
    reruns: Annotated[int, Field(ge=0, le=5)] = 0
    install_dependencies: bool = True
    dependency_network: bool = True
    # Where the dependency step installs from (only it has network); unset: PyPI.
    package_index: Annotated[
        str | None,
        Field(description="a PEP 503 simple index (a private proxy), without credentials"),
    ] = None
    package_index_username: Annotated[
        str, Field(min_length=1, description="the index's user (CodeArtifact: aws)")
    ] = CODEARTIFACT_USER
    package_index_token: Annotated[
        SecretStr | None,
        Field(description="the index's token (the QA task gets it with its grant)"),
    ] = None
    archive_limits: ArchiveLimits = ArchiveLimits()
    work_dir: Annotated[
        Path | None, Field(description="default: a private directory under /var/tmp")
    ] = None
    docker_image: str = "prtrace-qa-python:bookworm-tools"
    keep_work_dir: bool = False
    cache_dir: Annotated[
        Path | None,
        Field(
            description="the runner's pytest and the dependency cache; default: "
            "/var/cache/prtrace/qa as root, else ~/.cache/prtrace/qa"
        ),
    ] = None
    python: Annotated[
        str | None,
        Field(
            description="container backend: the interpreter tests run with; default: the image's"
        ),
    ] = None

    @field_validator("package_index")
    @classmethod
    def _plain_index_url(cls, value: str | None) -> str | None:
        return None if value is None else check_index_url(value)

    @model_validator(mode="after")
    def _token_needs_an_index(self) -> QASettings:
        if self.package_index_token is not None and self.package_index is None:
            raise ValueError(
                "PRTRACE_QA_PACKAGE_INDEX_TOKEN is set without PRTRACE_QA_PACKAGE_INDEX"
            )
        return self

    def with_index_token(self, token: str) -> QASettings:
        """These settings with the index's token (the QA task's comes with its grant)."""
        if self.package_index is None:
            raise ValueError("an index token was given, but PRTRACE_QA_PACKAGE_INDEX is unset")
        return self.model_copy(update={"package_index_token": SecretStr(token)})

    def index(self) -> PackageIndex | None:
        """The dependency step's index with its credentials; None: pip's default."""
        if self.package_index is None:
            return None
        return PackageIndex(
            url=self.package_index,
            username=self.package_index_username,
            token=self.package_index_token,
        )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, _FlatLimits(settings_cls)

    @classmethod
    def variable_at(cls, loc: Any) -> str:
        if len(loc) > 1 and loc[0] == "limits" and loc[1] in LIMIT_VARIABLES:
            return LIMIT_VARIABLES[str(loc[1])]
        return super().variable_at(loc)


class QATaskInput(EnvSettings):
    """What one QA task is asked to do (`python -m functions.qa_runner`): each field is
    also an argument (`--trace-id`, `--base-sha256`, ...), which wins over its variable.
    The state machine sets the tenant, trace, document and report variables; a snapshot
    given directly is its key, SHA-256, size and media type, for both sides."""

    used_by: ClassVar[str] = "QA task"

    trace_id: Annotated[str | None, Field(description="the trace to check")] = None
    qa_grant: Annotated[
        SecretStr | None,
        Field(
            description="presigned requests for this trace (prtrace.qa.grant; the pipeline "
            "sets it): when set, the task needs no bucket and no AWS credentials"
        ),
    ] = None
    bucket: str | None = None
    tenant: Annotated[
        str | None, Field(description="the trace's tenant; default: the document key's")
    ] = None
    document_key: Annotated[str | None, Field(description="the assembled trace document's key")] = (
        None
    )
    report_key: Annotated[
        str | None,
        Field(description="the report's key; default <trace prefix>/qa/report.json"),
    ] = None
    base_key: Annotated[
        str | None, Field(description="the base snapshot's key (or a document key)")
    ] = None
    base_sha256: Annotated[str | None, Field(description="its SHA-256")] = None
    base_size: Annotated[int | None, Field(ge=0, description="its size in bytes")] = None
    base_media_type: Annotated[str, Field(description="its media type")] = TAR
    final_key: Annotated[
        str | None, Field(description="the final snapshot's key (or a document key)")
    ] = None
    final_sha256: Annotated[str | None, Field(description="its SHA-256")] = None
    final_size: Annotated[int | None, Field(ge=0, description="its size in bytes")] = None
    final_media_type: Annotated[str, Field(description="its media type")] = TAR

    def snapshot(self, side: str) -> dict[str, object] | None:
        """The side's snapshot as QATaskRequest takes it; None when no key is given."""
        key: str | None = getattr(self, f"{side}_key")
        if key is None:
            return None
        sha256: str = getattr(self, f"{side}_sha256") or ""
        size: int | None = getattr(self, f"{side}_size")
        return {
            "key": key,
            "ref": {
                "uri": artifact_uri(sha256),
                "sha256": sha256,
                "size": -1 if size is None else size,
                "media_type": getattr(self, f"{side}_media_type"),
            },
        }
