"""Dataset exports on the service: `POST /v1/exports` asks for one, a pipeline-style job
(a Step Functions execution running a container task, prtrace.dataset.job) writes its files
to S3, and `GET /v1/exports/{id}` reports it and links its files.

An export lives under its tenant's prefix (prtrace.storage_keys.export_*):

    request.json        what was asked and when (the API writes it, once)
    files/{name}        instances.jsonl, events.jsonl, trajectories.jsonl, artifacts.jsonl,
                        events.parquet, traces.parquet, README.md (the dataset card)
    manifest.json       counts and SHA-256s: written last by the job, so it means "done"
    manifest.dsse.json  its signature (DSSE over an in-toto Statement), when a key is set
    error.json          why the job failed, when it could say so

The status is read from those objects and the job's execution: `complete` once the
manifest exists, else `running` while the execution runs (a failed task may be started
again), else `failed` with error.json or the execution's error. Nothing here is overwritten:
every object is written once, conditionally.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Final, Literal, Protocol

import orjson
from pydantic import BaseModel, ConfigDict, Field
from ulid import ULID

from prtrace.dataset.rows import ExportFilter
from prtrace.errors import ExportNotFound, ExportNotStarted
from prtrace.integrity import sha256_hex
from prtrace.judge.rubric import DIMENSION_IDS
from prtrace.media_types import JSON
from prtrace.ports import BlobStore, PipelineUnavailable
from prtrace.qa.report import Verdict
from prtrace.records import COMPLETE, FAILED, TraceStatus, rfc3339_ms
from prtrace.schema import UtcTimestamp
from prtrace.storage_keys import (
    export_envelope_key,
    export_error_key,
    export_file_key,
    export_manifest_key,
    export_request_key,
)

EXPORT_ID_PATTERN: Final = r"^ex_[0-9A-HJKMNP-TV-Z]{26}$"
_EXPORT_ID: Final = re.compile(EXPORT_ID_PATTERN)
RUNNING: Final = "running"

Format = Literal["swebench", "events", "parquet", "trajectories"]
VerdictChoice = Literal[Verdict, "none"]  # "none": a trace QA did not run for
Dimension = Literal[DIMENSION_IDS]  # type: ignore[valid-type]
Score = Annotated[int, Field(ge=0, le=5)]


class ExportRequest(BaseModel):
    """What to export: the formats, and which traces (the same filter as `prtrace export`;
    each list empty or absent means "any", except statuses, which default to complete)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    formats: list[Format] = Field(["swebench", "events", "parquet", "trajectories"], min_length=1)
    statuses: list[TraceStatus] = Field(["complete"], min_length=1)
    verdicts: list[VerdictChoice] = Field(default_factory=list)
    min_overall: Annotated[float, Field(ge=0, le=5)] | None = None
    min_scores: dict[Dimension, Score] = Field(default_factory=dict)
    since: UtcTimestamp | None = Field(None, description="created at or after")
    until: UtcTimestamp | None = Field(None, description="created before")
    repositories: list[Annotated[str, Field(min_length=1, max_length=512)]] = Field(
        default_factory=list, max_length=100
    )
    include_flagged: bool = Field(
        False,
        description="also take traces whose QA report has tamper flags (left out by default; "
        "the manifest lists those left out)",
    )

    include_unusable: bool = Field(
        False,
        description="also take traces whose instance is not usable as it is (no patch, no "
        "target tests, a dirty base, ...: `unusable_reasons`); left out by default, and the "
        "manifest lists them",
    )
    string_test_lists: bool = Field(
        False,
        description="write FAIL_TO_PASS/PASS_TO_PASS as JSON strings, as SWE-bench's "
        "published rows hold them (default: lists)",
    )

    def to_filter(self) -> ExportFilter:
        return ExportFilter(
            statuses=frozenset(self.statuses),
            verdicts=frozenset(self.verdicts),
            min_overall=self.min_overall,
            min_scores=dict(self.min_scores),
            since=self.since,
            until=self.until,
            repositories=frozenset(self.repositories),
            include_flagged=self.include_flagged,
            include_unusable=self.include_unusable,
        )


class ExportBlobs(BlobStore, Protocol):
    def get(self, key: str) -> bytes | None: ...


class ExportLauncher(Protocol):
    def start(self, tenant: str, export_id: str) -> None:
        """Start the export's job once (one execution per export id). Raises
        PipelineUnavailable."""

    def state(self, export_id: str) -> tuple[str, str | None] | None:
        """(execution status as Step Functions says it, its error and cause), or None when
        no execution of this export exists."""


class NoExportJob:
    """No export state machine is configured (a stack without one): nothing can start."""

    def start(self, tenant: str, export_id: str) -> None:
        raise PipelineUnavailable("this deployment has no export job configured")

    def state(self, export_id: str) -> tuple[str, str | None] | None:
        return None


def new_export_id() -> str:
    return f"ex_{ULID()}"


class DatasetExports:
    def __init__(self, blobs: ExportBlobs, launcher: ExportLauncher, url_ttl_s: int = 3600):
        self._blobs = blobs
        self._launcher = launcher
        self._ttl_s = url_ttl_s

    def start(self, tenant: str, request: ExportRequest, now: str) -> dict[str, Any]:
        """Record the request and start its job; the export's view (status running)."""
        export_id = new_export_id()
        stored = {
            "export_id": export_id,
            "created_at": rfc3339_ms(now),
            "request": request.model_dump(mode="json"),
        }
        body = orjson.dumps(stored, option=orjson.OPT_SORT_KEYS)
        key = export_request_key(tenant, export_id)
        self._blobs.put_if_absent(key, body, sha256_hex(body), JSON)
        try:
            self._launcher.start(tenant, export_id)
        except Exception as exc:  # PipelineUnavailable, and whatever the launcher raised
            raise ExportNotStarted(
                f"export {export_id} was recorded but its job could not be started ({exc}); "
                "ask for the export again"
            ) from exc
        return {**stored, "status": RUNNING}

    def get(self, tenant: str, export_id: str) -> dict[str, Any]:
        """The export's view: its request, status, and once complete its manifest and a
        link to each file, the manifest and its signature."""
        if not _EXPORT_ID.fullmatch(export_id):  # never one we issued; keep it out of keys
            raise ExportNotFound(export_id)
        data = self._blobs.get(export_request_key(tenant, export_id))
        if data is None:
            raise ExportNotFound(export_id)
        view: dict[str, Any] = orjson.loads(data)
        manifest_bytes = self._blobs.get(export_manifest_key(tenant, export_id))
        if manifest_bytes is not None:
            manifest = orjson.loads(manifest_bytes)
            links = self._links(tenant, view, manifest)
            view.update(status=COMPLETE, manifest=manifest, links=links)
            return view
        # The task may be started again after a failure, so error.json (kept from the first
        # failed attempt) is final only once the execution has ended.
        state = self._launcher.state(export_id)
        if state is not None and state[0] == "RUNNING":
            view["status"] = RUNNING
            return view
        error = self._blobs.get(export_error_key(tenant, export_id))
        if error is not None:
            view.update(status=FAILED, error=orjson.loads(error))
        elif state is None:
            detail = (
                "no execution of the export's job is on record: it never started, or it "
                "ended over 90 days ago (Step Functions keeps ended executions that long)"
            )
            view.update(status=FAILED, error=_error("NotStarted", detail))
        else:
            cause = state[1] or "the job ended without writing the export's manifest"
            view.update(status=FAILED, error=_error(_job_error(state[0]), cause))
        return view

    def _links(
        self, tenant: str, view: Mapping[str, Any], manifest: Mapping[str, Any]
    ) -> dict[str, Any]:
        export_id = str(view["export_id"])
        files = {
            name: self._blobs.presign_get(export_file_key(tenant, export_id, name), self._ttl_s)
            for name in sorted(manifest.get("files") or {})
        }
        manifest_key = export_manifest_key(tenant, export_id)
        links: dict[str, Any] = {
            "files": files,
            "manifest": self._blobs.presign_get(manifest_key, self._ttl_s),
            "signature": None,
            "expires_in": self._ttl_s,
        }
        envelope = export_envelope_key(tenant, export_id)
        if self._blobs.head(envelope) is not None:
            links["signature"] = self._blobs.presign_get(envelope, self._ttl_s)
        return links


def _job_error(status: str) -> str:
    """JobFailed, JobTimedOut, JobAborted: an ended execution's status as an error name."""
    return "Job" + "".join(word.title() for word in status.split("_"))


def _error(kind: str, detail: str) -> dict[str, str]:
    return {"error": kind, "detail": detail}
