"""Trace schema v1: the models every client, handler and pipeline step agrees on.

Strict everywhere (no type coercion), unknown fields rejected, and every string, list and
number bounded, so a hostile client cannot make the server store unbounded data. Integers
stay below 2**53 and there are no floats: that keeps RFC 8785 canonical JSON exact with
orjson (see canonical.py). The limits are documented in docs/schema.md; change them here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, ClassVar, Final, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

SCHEMA_VERSION: Final = "prtrace.trace/v1"

# Bounds. String lengths count Unicode code points (as pydantic does), not bytes.
MAX_EVENTS_PER_CHUNK: Final = 2_000
MAX_EVENT_SEQ: Final = 9_999_999
MAX_ID_LEN: Final = 128
MAX_PATH_LEN: Final = 4_096
MAX_INLINE_DIFF_LEN: Final = 65_536
MAX_TEXT_LEN: Final = 16_384
MAX_ARGV_ITEMS: Final = 256
MAX_ARG_LEN: Final = 4_096
MAX_LIST_ITEMS: Final = 10_000
MAX_TEST_ID_LEN: Final = 1_024
MAX_DURATION_MS: Final = 7 * 24 * 3_600 * 1_000
MAX_LINE_COUNT: Final = 10_000_000
MAX_TEST_COUNT: Final = 1_000_000
MAX_BLOB_SIZE: Final = 5 * 1024**3

_URL_CHARS: Final = r"[^\x00-\x20\x7F-\x9F]"
_STRICT = ConfigDict(strict=True, extra="forbid", frozen=True)


def _utc_instant(value: str) -> str:
    """The pattern admits only `...Z`; this also rejects impossible dates like 02-30."""
    if value[8:10] <= "28":
        return value  # the pattern bounds every field; days 01-28 exist in every month
    # fromisoformat takes at most 6 fractional digits; RFC 3339 allows more.
    head, _, frac = value[:-1].partition(".")
    try:
        datetime.fromisoformat(f"{head}.{frac[:6]}+00:00" if frac else f"{head}+00:00")
    except ValueError as exc:
        raise ValueError(f"not a valid calendar date and time: {exc}") from None
    return value


Sha256Hex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$", description="lowercase hex SHA-256")]
GitSha = Annotated[
    str,
    Field(pattern=r"^[0-9a-f]{40}([0-9a-f]{24})?$", description="git object id (SHA-1 or SHA-256)"),
]
UtcTimestamp = Annotated[
    str,
    Field(
        # [0-9], not \d: pydantic's regex engine reads \d as any Unicode digit, so fraction
        # digits past the 6th (unchecked by fromisoformat) admitted e.g. "٣"; JSON Schema's
        # \d is ASCII-only, so [0-9] also keeps the published schema and the server in step.
        # Each field within its range (year 0001-9999, as the server's calendar check), so
        # the published schema refuses 0000-00-00 too; only day-of-month limits (02-30) are
        # left to that check.
        pattern=r"^([0-9]{3}[1-9]|[0-9]{2}[1-9][0-9]|[0-9][1-9][0-9]{2}|[1-9][0-9]{3})"
        r"-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
        r"T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?Z$",
        max_length=30,
        description="RFC 3339 timestamp in UTC with a `Z` suffix; a real calendar date and "
        "time (the server also refuses days a month does not have, e.g. 02-30)",
        json_schema_extra={"format": "date-time"},
        examples=["2026-11-25T09:14:03.120Z"],
    ),
    AfterValidator(_utc_instant),
]
EventId = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$",
        max_length=MAX_ID_LEN,
        description="client-chosen id, unique within the trace",
    ),
]
Path = Annotated[str, Field(min_length=1, max_length=MAX_PATH_LEN)]
Text = Annotated[str, Field(min_length=1, max_length=MAX_TEXT_LEN)]
Arg = Annotated[str, Field(max_length=MAX_ARG_LEN)]
TestId = Annotated[str, Field(min_length=1, max_length=MAX_TEST_ID_LEN)]
Name = Annotated[str, Field(min_length=1, max_length=64)]
DurationMs = Annotated[int, Field(ge=0, le=MAX_DURATION_MS)]
LineCount = Annotated[int, Field(ge=0, le=MAX_LINE_COUNT)]
TestCount = Annotated[int, Field(ge=0, le=MAX_TEST_COUNT)]


ARTIFACT_URI_PREFIX: Final = "artifact://sha256/"


def artifact_uri(sha256: str) -> str:
    """How an event addresses an artifact of its trace: by content."""
    return f"{ARTIFACT_URI_PREFIX}{sha256}"


class BlobRef(BaseModel):
    """Large content lives in an artifact uploaded through the API, never inline."""

    model_config = _STRICT

    uri: Annotated[
        str,
        Field(
            pattern=rf"^{ARTIFACT_URI_PREFIX}[0-9a-f]{{64}}$",
            description="artifact of this trace, addressed by its SHA-256",
        ),
    ]
    sha256: Sha256Hex
    size: Annotated[int, Field(ge=0, le=MAX_BLOB_SIZE, description="bytes")]
    media_type: Annotated[
        str, Field(pattern=r"^[a-z0-9][a-z0-9.+-]*/[a-z0-9][a-z0-9.+-]*$", max_length=127)
    ]

    @model_validator(mode="after")
    def _uri_names_the_digest(self) -> BlobRef:
        if not self.uri.endswith(self.sha256):
            raise ValueError("uri must end with the blob's sha256")
        return self


# ---- trace metadata -------------------------------------------------------------------


class Repository(BaseModel):
    model_config = _STRICT

    url: Annotated[
        str,
        Field(
            min_length=1,
            max_length=2_048,
            # An explicit class, not \s: Python's and ECMA 262's \s differ (U+0085), and JSON
            # Schema validators use ECMA regexes. No space, no C0/C1 control, no DEL.
            pattern=rf"^(https?|ssh|git|file)://{_URL_CHARS}+$"
            rf"|^[A-Za-z0-9_.-]+@[A-Za-z0-9_.-]+:{_URL_CHARS}+$",
        ),
    ]
    base_commit: GitSha
    # Left out when absent, so the metadata an older client sent is stored and echoed as sent.
    dirty: bool | None = Field(
        default=None,
        exclude_if=lambda value: value is None,
        description="true: the working tree had uncommitted changes (staged, unstaged or "
        "untracked, not ignored) when recording started, so the base snapshot is not "
        "`base_commit`'s tree; false: it was clean; absent: not recorded, e.g. older clients",
    )


class Task(BaseModel):
    model_config = _STRICT

    title: Annotated[str, Field(min_length=1, max_length=256)]
    description: Annotated[str, Field(max_length=MAX_TEXT_LEN)] = ""


class Author(BaseModel):
    model_config = _STRICT

    id: Annotated[str, Field(min_length=1, max_length=MAX_ID_LEN)]
    kind: Literal["human", "agent"]


class Client(BaseModel):
    model_config = _STRICT

    name: Name
    version: Name


class TraceMetadata(BaseModel):
    """Body of `POST /v1/traces`: what was fixed, where, and by whom."""

    model_config = _STRICT

    repository: Repository
    task: Task
    author: Author
    client: Client


class WorkspaceSnapshots(BaseModel):
    """Archives (tar, tar.gz or tar.zst) of the workspace before and after the fix, uploaded
    as artifacts of the trace; QA runs the tests on both."""

    model_config = _STRICT

    base: BlobRef
    final: BlobRef


# ---- events -------------------------------------------------------------------------


class FileEditPayload(BaseModel):
    model_config = _STRICT

    path: Path
    change: Literal["add", "modify", "delete", "rename"]
    old_path: Path | None = Field(default=None, description="required when change is rename")
    diff: Annotated[str, Field(max_length=MAX_INLINE_DIFF_LEN)] | None = Field(
        default=None, description="unified diff, inline when small"
    )
    diff_ref: BlobRef | None = Field(default=None, description="unified diff as an artifact")
    lines_added: LineCount
    lines_removed: LineCount

    @model_validator(mode="after")
    def _consistent(self) -> FileEditPayload:
        if self.diff is not None and self.diff_ref is not None:
            raise ValueError("give the diff inline or as diff_ref, not both")
        if (self.change == "rename") != (self.old_path is not None):
            raise ValueError("old_path is required for a rename and only for a rename")
        return self


class CmdRunPayload(BaseModel):
    model_config = _STRICT

    argv: Annotated[list[Arg], Field(min_length=1, max_length=MAX_ARGV_ITEMS)]
    cwd: Path
    exit_code: Annotated[int, Field(ge=-255, le=255, description="negative: killed by signal")]
    duration_ms: DurationMs
    stdout_ref: BlobRef | None = None
    stderr_ref: BlobRef | None = None


# How a test run ended: `passed`/`failed` ran tests; `collection_error`: a test module
# failed to import or collect; `no_tests_collected`; `usage_error` (bad option, missing
# path); `interrupted`; `internal_error` (the runner crashed); `killed` (by a signal);
# `other` (an exit status the framework does not define).
TestOutcome = Literal[
    "passed",
    "failed",
    "collection_error",
    "no_tests_collected",
    "usage_error",
    "interrupted",
    "internal_error",
    "killed",
    "other",
]


class TestRunPayload(BaseModel):
    __test__: ClassVar[bool] = False  # not a pytest test class
    model_config = _STRICT

    framework: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$", max_length=32)]
    command: Annotated[list[Arg], Field(min_length=1, max_length=MAX_ARGV_ITEMS)]
    passed: TestCount
    failed: TestCount
    errors: TestCount
    skipped: TestCount
    failing_tests: Annotated[list[TestId], Field(max_length=MAX_LIST_ITEMS)] = []
    duration_ms: DurationMs | None = None
    report_ref: BlobRef | None = Field(default=None, description="e.g. the JUnit XML report")
    # Added compatibly in v1 (both optional): without them a usage error, an empty
    # collection and a missing path all read as 0 passed / 0 failed.
    exit_code: Annotated[
        int | None,
        Field(
            ge=-255, le=255, description="the test runner's exit status; negative: killed by signal"
        ),
    ] = None
    outcome: TestOutcome | None = Field(
        default=None, description="how the run ended, from the exit status and the output"
    )


class CommitPayload(BaseModel):
    model_config = _STRICT

    sha: GitSha
    message: Text
    files: Annotated[list[Path], Field(max_length=MAX_LIST_ITEMS)]
    diff_ref: BlobRef | None = None


class RationaleNotePayload(BaseModel):
    model_config = _STRICT

    kind: Literal["hypothesis", "plan", "observation", "decision"]
    text: Text


class _Envelope(BaseModel):
    model_config = _STRICT

    event_id: EventId
    seq: Annotated[
        int, Field(ge=0, le=MAX_EVENT_SEQ, description="contiguous from 0 across the trace")
    ]
    ts: UtcTimestamp


class FileEditEvent(_Envelope):
    type: Literal["file_edit"]
    payload: FileEditPayload


class CmdRunEvent(_Envelope):
    type: Literal["cmd_run"]
    payload: CmdRunPayload


class TestRunEvent(_Envelope):
    __test__: ClassVar[bool] = False
    type: Literal["test_run"]
    payload: TestRunPayload


class CommitEvent(_Envelope):
    type: Literal["commit"]
    payload: CommitPayload


class RationaleNoteEvent(_Envelope):
    type: Literal["rationale_note"]
    payload: RationaleNotePayload


Event = Annotated[
    FileEditEvent | CmdRunEvent | TestRunEvent | CommitEvent | RationaleNoteEvent,
    Field(discriminator="type"),
]
EVENT_TYPES: Final = ("file_edit", "cmd_run", "test_run", "commit", "rationale_note")


class ChunkBody(BaseModel):
    """Body of `PUT /v1/traces/{id}/chunks/{seq}`: consecutive events of one trace."""

    model_config = _STRICT

    events: Annotated[list[Event], Field(min_length=1, max_length=MAX_EVENTS_PER_CHUNK)]
