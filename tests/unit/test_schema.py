"""Trace schema v1: what it admits, what it refuses and where it says the error is; the
JSON pointers of validation errors; and prepare_chunk's checks and canonical form."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import orjson
import pytest
from pydantic import TypeAdapter, ValidationError

from prtrace.errors import FieldError, InvalidInput
from prtrace.ingest.chunks import prepare_chunk
from prtrace.schema import (
    EVENT_TYPES,
    MAX_ARG_LEN,
    MAX_ARGV_ITEMS,
    MAX_BLOB_SIZE,
    MAX_DURATION_MS,
    MAX_EVENT_SEQ,
    MAX_EVENTS_PER_CHUNK,
    MAX_ID_LEN,
    MAX_INLINE_DIFF_LEN,
    MAX_LINE_COUNT,
    MAX_LIST_ITEMS,
    MAX_PATH_LEN,
    MAX_TEST_COUNT,
    MAX_TEST_ID_LEN,
    MAX_TEXT_LEN,
    BlobRef,
    ChunkBody,
    Event,
    TraceMetadata,
)
from prtrace.validation import field_errors, json_pointer
from tests.factories import blob_ref, event, events, trace_metadata

EVENT = TypeAdapter(Event)
REF = blob_ref(b"diff --git a/x b/x\n", "text/x-diff")


def copy(value: Any) -> Any:
    return orjson.loads(orjson.dumps(value))


def with_value(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    """A deep copy of document with the value at path replaced (or added)."""
    result = copy(document)
    node = result
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return result


def without(document: Any, path: tuple[Any, ...]) -> Any:
    result = copy(document)
    node = result
    for step in path[:-1]:
        node = node[step]
    del node[path[-1]]
    return result


def chunk_errors(body: Any) -> list[tuple[str, str]]:
    """(JSON pointer, pydantic error type) of every error validating body as a chunk."""
    with pytest.raises(ValidationError) as caught:
        ChunkBody.model_validate(body)
    return [(json_pointer(e["loc"]), e["type"]) for e in caught.value.errors()]


def event_errors(raw: Any) -> list[tuple[str, str]]:
    return [
        (pointer.removeprefix("/events/0"), kind)
        for pointer, kind in chunk_errors({"events": [raw]})
    ]


def is_valid_event(raw: Any) -> bool:
    try:
        EVENT.validate_python(raw)
    except ValidationError:
        return False
    return True


# ---- valid documents --------------------------------------------------------------------


@pytest.mark.parametrize("kind", EVENT_TYPES)
def test_a_realistic_event_of_each_type_is_valid(kind: str) -> None:
    raw = event(7, kind)
    model = EVENT.validate_python(raw)
    assert model.type == kind
    assert model.seq == 7
    assert model.model_dump(mode="json", exclude_none=True) == raw


MINIMAL_PAYLOADS: dict[str, dict[str, Any]] = {
    "file_edit": {"path": "a", "change": "delete", "lines_added": 0, "lines_removed": 0},
    "cmd_run": {"argv": [""], "cwd": "/", "exit_code": -255, "duration_ms": 0},
    "test_run": {
        "framework": "go",
        "command": ["go", "test"],
        "passed": 0,
        "failed": 0,
        "errors": 0,
        "skipped": 0,
    },
    "commit": {"sha": "0" * 64, "message": "m", "files": []},
    "rationale_note": {"kind": "decision", "text": "x"},
}


@pytest.mark.parametrize("kind", EVENT_TYPES)
def test_a_minimal_event_of_each_type_is_valid(kind: str) -> None:
    raw = {
        "event_id": "0",
        "seq": 0,
        "ts": "2026-01-01T00:00:00Z",
        "type": kind,
        "payload": MINIMAL_PAYLOADS[kind],
    }
    assert EVENT.validate_python(raw).type == kind


def test_optional_blob_refs_are_accepted() -> None:
    cmd = with_value(event(1, "cmd_run"), ("payload", "stderr_ref"), REF)
    test = with_value(event(2, "test_run"), ("payload", "report_ref"), REF)
    commit = with_value(event(3, "commit"), ("payload", "diff_ref"), REF)
    for raw in (cmd, test, commit):
        assert is_valid_event(raw)


def test_trace_metadata_is_valid() -> None:
    metadata = TraceMetadata.model_validate(trace_metadata())
    assert metadata.author.kind == "human"
    scp_style = with_value(trace_metadata(), ("repository", "url"), "git@github.com:acme/x.git")
    assert TraceMetadata.model_validate(scp_style).repository.url.startswith("git@")


def test_task_description_defaults_to_empty() -> None:
    metadata = TraceMetadata.model_validate(without(trace_metadata(), ("task", "description")))
    assert metadata.task.description == ""


# ---- unknown fields ---------------------------------------------------------------------

UNKNOWN_FIELD_CASES = [
    ("file_edit", ()),
    ("file_edit", ("payload",)),
    ("file_edit", ("payload", "diff_ref")),
    ("cmd_run", ("payload",)),
    ("cmd_run", ("payload", "stdout_ref")),
    ("test_run", ("payload",)),
    ("commit", ("payload",)),
    ("rationale_note", ()),
    ("rationale_note", ("payload",)),
]


@pytest.mark.parametrize(("kind", "where"), UNKNOWN_FIELD_CASES)
def test_unknown_event_fields_are_rejected_at_every_level(
    kind: str, where: tuple[str, ...]
) -> None:
    raw = event(0, kind)
    if kind == "file_edit":
        raw = with_value(without(raw, ("payload", "diff")), ("payload", "diff_ref"), REF)
    raw = with_value(raw, (*where, "extra"), 1)
    assert event_errors(raw) == [("/" + "/".join((*where, "extra")), "extra_forbidden")]


def test_unknown_chunk_fields_are_rejected() -> None:
    assert chunk_errors({"events": events(0, 1), "trace_id": "x"}) == [
        ("/trace_id", "extra_forbidden")
    ]


@pytest.mark.parametrize("where", [(), ("repository",), ("task",), ("author",), ("client",)])
def test_unknown_metadata_fields_are_rejected_at_every_level(where: tuple[str, ...]) -> None:
    with pytest.raises(ValidationError) as caught:
        TraceMetadata.model_validate(with_value(trace_metadata(), (*where, "extra"), "x"))
    [error] = caught.value.errors()
    assert (json_pointer(error["loc"]), error["type"]) == (
        "/" + "/".join((*where, "extra")),
        "extra_forbidden",
    )


# ---- strictness -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "path", "value"),
    [
        ("file_edit", ("seq",), "3"),
        ("file_edit", ("seq",), 3.0),
        ("file_edit", ("seq",), True),
        ("file_edit", ("payload", "lines_added"), "1"),
        ("file_edit", ("payload", "lines_added"), 1.0),
        ("cmd_run", ("payload", "exit_code"), 1.0),
        ("cmd_run", ("payload", "duration_ms"), "1200"),
        ("cmd_run", ("payload", "argv"), ("python", "-V")),
        ("cmd_run", ("payload", "argv", 0), 1),
        ("test_run", ("payload", "passed"), None),
        ("test_run", ("payload", "failing_tests"), None),
        ("commit", ("payload", "files"), "src/a.py"),
        ("rationale_note", ("event_id",), 42),
        ("rationale_note", ("payload", "text"), b"bytes"),
        ("rationale_note", ("payload", "kind"), "Plan"),
    ],
)
def test_values_are_not_coerced(kind: str, path: tuple[Any, ...], value: Any) -> None:
    raw = event(3, kind)
    node = raw
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value  # no JSON round trip: tuples and bytes stay what they are
    errors = event_errors(raw)
    assert errors
    assert all(pointer.startswith("/" + "/".join(map(str, path[:2]))) for pointer, _ in errors)


def test_blob_size_is_not_coerced_from_float() -> None:
    assert not is_valid_event(
        with_value(event(1, "cmd_run"), ("payload", "stdout_ref", "size"), 12.0)
    )


# ---- bounds: at the bound accepted, one past it refused ----------------------------------


def chars(n: int) -> str:
    return "x" * n


BOUNDS: list[tuple[str, tuple[Any, ...], Any, Any]] = [
    # (event type, path, value at the bound, value past the bound)
    ("file_edit", ("seq",), MAX_EVENT_SEQ, MAX_EVENT_SEQ + 1),
    ("file_edit", ("seq",), 0, -1),
    ("file_edit", ("event_id",), chars(MAX_ID_LEN), chars(MAX_ID_LEN + 1)),
    ("file_edit", ("payload", "path"), chars(MAX_PATH_LEN), chars(MAX_PATH_LEN + 1)),
    ("file_edit", ("payload", "path"), "p", ""),
    ("file_edit", ("payload", "diff"), chars(MAX_INLINE_DIFF_LEN), chars(MAX_INLINE_DIFF_LEN + 1)),
    ("file_edit", ("payload", "lines_added"), MAX_LINE_COUNT, MAX_LINE_COUNT + 1),
    ("file_edit", ("payload", "lines_removed"), 0, -1),
    ("cmd_run", ("payload", "argv"), ["a"] * MAX_ARGV_ITEMS, ["a"] * (MAX_ARGV_ITEMS + 1)),
    ("cmd_run", ("payload", "argv"), ["a"], []),
    ("cmd_run", ("payload", "argv", 0), chars(MAX_ARG_LEN), chars(MAX_ARG_LEN + 1)),
    ("cmd_run", ("payload", "cwd"), chars(MAX_PATH_LEN), chars(MAX_PATH_LEN + 1)),
    ("cmd_run", ("payload", "exit_code"), 255, 256),
    ("cmd_run", ("payload", "exit_code"), -255, -256),
    ("cmd_run", ("payload", "duration_ms"), MAX_DURATION_MS, MAX_DURATION_MS + 1),
    ("cmd_run", ("payload", "duration_ms"), 0, -1),
    ("cmd_run", ("payload", "stdout_ref", "size"), MAX_BLOB_SIZE, MAX_BLOB_SIZE + 1),
    ("cmd_run", ("payload", "stdout_ref", "size"), 0, -1),
    ("cmd_run", ("payload", "stdout_ref", "media_type"), "a/" + chars(125), "a/" + chars(126)),
    ("test_run", ("payload", "framework"), chars(32), chars(33)),
    ("test_run", ("payload", "command"), ["a"] * MAX_ARGV_ITEMS, ["a"] * (MAX_ARGV_ITEMS + 1)),
    ("test_run", ("payload", "passed"), MAX_TEST_COUNT, MAX_TEST_COUNT + 1),
    ("test_run", ("payload", "failed"), 0, -1),
    ("test_run", ("payload", "errors"), MAX_TEST_COUNT, MAX_TEST_COUNT + 1),
    ("test_run", ("payload", "skipped"), MAX_TEST_COUNT, MAX_TEST_COUNT + 1),
    (
        "test_run",
        ("payload", "failing_tests"),
        ["t"] * MAX_LIST_ITEMS,
        ["t"] * (MAX_LIST_ITEMS + 1),
    ),
    (
        "test_run",
        ("payload", "failing_tests"),
        [chars(MAX_TEST_ID_LEN)],
        [chars(MAX_TEST_ID_LEN + 1)],
    ),
    ("test_run", ("payload", "failing_tests"), ["t"], [""]),
    ("test_run", ("payload", "duration_ms"), MAX_DURATION_MS, MAX_DURATION_MS + 1),
    ("commit", ("payload", "message"), chars(MAX_TEXT_LEN), chars(MAX_TEXT_LEN + 1)),
    ("commit", ("payload", "message"), "m", ""),
    ("commit", ("payload", "files"), ["f"] * MAX_LIST_ITEMS, ["f"] * (MAX_LIST_ITEMS + 1)),
    ("commit", ("payload", "files"), [chars(MAX_PATH_LEN)], [chars(MAX_PATH_LEN + 1)]),
    ("commit", ("payload", "sha"), "a" * 64, "a" * 63),
    ("commit", ("payload", "sha"), "a" * 40, "a" * 41),
    ("rationale_note", ("payload", "text"), chars(MAX_TEXT_LEN), chars(MAX_TEXT_LEN + 1)),
    ("rationale_note", ("payload", "text"), "t", ""),
]


@pytest.mark.parametrize(
    ("kind", "path", "at_bound", "past_bound"),
    BOUNDS,
    ids=[f"{kind}:{'.'.join(map(str, path))}:{i}" for i, (kind, path, _, _) in enumerate(BOUNDS)],
)
def test_event_bounds_are_enforced(
    kind: str, path: tuple[Any, ...], at_bound: Any, past_bound: Any
) -> None:
    raw = event(1, kind)
    assert is_valid_event(with_value(raw, path, at_bound))
    errors = event_errors(with_value(raw, path, past_bound))
    assert errors
    # The error names the field (or, for list items, the item) that is out of bounds.
    assert all(p.startswith("/" + "/".join(map(str, path[:3]))) for p, _ in errors), errors


METADATA_BOUNDS: list[tuple[tuple[str, ...], Any, Any]] = [
    (("task", "title"), chars(256), chars(257)),
    (("task", "title"), "t", ""),
    (("task", "description"), chars(MAX_TEXT_LEN), chars(MAX_TEXT_LEN + 1)),
    (("author", "id"), chars(MAX_ID_LEN), chars(MAX_ID_LEN + 1)),
    (("client", "name"), chars(64), chars(65)),
    (("client", "version"), "1", ""),
    (("repository", "url"), "https://h/" + chars(2_038), "https://h/" + chars(2_039)),
    (("repository", "base_commit"), "b" * 40, "B" * 40),
]


@pytest.mark.parametrize(("path", "at_bound", "past_bound"), METADATA_BOUNDS)
def test_metadata_bounds_are_enforced(
    path: tuple[str, ...], at_bound: Any, past_bound: Any
) -> None:
    TraceMetadata.model_validate(with_value(trace_metadata(), path, at_bound))
    with pytest.raises(ValidationError) as caught:
        TraceMetadata.model_validate(with_value(trace_metadata(), path, past_bound))
    assert [json_pointer(e["loc"]) for e in caught.value.errors()] == ["/" + "/".join(path)]


@pytest.mark.parametrize(
    "url", ["ftp://h/x", "https://", "https://h/a b", "github.com/acme/x", "git@host"]
)
def test_repository_url_must_name_a_fetchable_remote(url: str) -> None:
    with pytest.raises(ValidationError):
        TraceMetadata.model_validate(with_value(trace_metadata(), ("repository", "url"), url))


def test_author_kind_is_human_or_agent() -> None:
    agent = with_value(trace_metadata(), ("author", "kind"), "agent")
    assert TraceMetadata.model_validate(agent).author.kind == "agent"
    with pytest.raises(ValidationError):
        TraceMetadata.model_validate(with_value(trace_metadata(), ("author", "kind"), "bot"))


def test_string_lengths_count_code_points_not_bytes() -> None:
    emoji = "\U0001f600" * MAX_TEXT_LEN  # 4 UTF-8 bytes each
    assert is_valid_event(with_value(event(4, "rationale_note"), ("payload", "text"), emoji))
    assert not is_valid_event(
        with_value(event(4, "rationale_note"), ("payload", "text"), emoji + "\U0001f600")
    )


@pytest.mark.parametrize(
    "event_id", ["a", "A.b:c-d_e", "0" * MAX_ID_LEN, "01HZX3Q9Y8", "tool:call.7"]
)
def test_event_id_pattern_accepts(event_id: str) -> None:
    assert is_valid_event(with_value(event(0), ("event_id",), event_id))


@pytest.mark.parametrize("event_id", ["", "-a", ".a", "_a", "a b", "a/b", "é", "a\n", "\uff41"])
def test_event_id_pattern_rejects(event_id: str) -> None:
    assert event_errors(with_value(event(0), ("event_id",), event_id))[0][0] == "/event_id"


def test_unknown_literals_are_rejected() -> None:
    assert event_errors(with_value(event(0), ("payload", "change"), "move")) == [
        ("/payload/change", "literal_error")
    ]
    assert event_errors(with_value(event(4), ("payload", "kind"), "rant")) == [
        ("/payload/kind", "literal_error")
    ]


@pytest.mark.parametrize("framework", ["Pytest", "-x", "", "py test", "jest!"])
def test_framework_is_a_lowercase_slug(framework: str) -> None:
    assert not is_valid_event(with_value(event(2), ("payload", "framework"), framework))


# ---- timestamps -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ts",
    [
        "2026-11-25T09:14:03Z",
        "2026-11-25T09:14:03.1Z",
        "2026-11-25T09:14:03.120Z",
        "2026-11-25T09:14:03.123456789Z",
        "2024-02-29T23:59:59.999Z",
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z",
    ],
)
def test_rfc3339_utc_timestamps_are_accepted(ts: str) -> None:
    assert is_valid_event(with_value(event(0), ("ts",), ts))


@pytest.mark.parametrize(
    "ts",
    [
        "2026-02-30T00:00:00Z",  # no such day
        "2025-02-29T00:00:00Z",  # not a leap year
        "2026-13-01T00:00:00Z",
        "2026-11-25T24:00:00Z",
        "2026-11-25T09:60:00Z",
        "0000-01-01T00:00:00Z",
        "2026-11-25T09:14:03+01:00",  # not UTC
        "2026-11-25T09:14:03+00:00",  # UTC, but not spelled Z
        "2026-11-25T09:14:03",  # no offset at all
        "2026-11-25T09:14:03z",
        "2026-11-25t09:14:03Z",
        "2026-11-25 09:14:03Z",
        "2026-11-25T09:14Z",
        "2026-11-25T09:14:03.Z",
        "2026-11-25T09:14:03.1234567891Z",  # more than 9 fraction digits
        "2026-11-25",
        "2026-11-25T09:14:03Z\n",
        "\u0661\u0662\u0663\u0664-11-25T09:14:03Z",  # Arabic-Indic digits
        "2026-11-25T09:14:03.0000007\u0663Z",  # regression: non-ASCII digit after the 6th
        "2026-11-25T09:14:03.123456\u0663\u0663\u0663Z",
        "\uff12\uff10\uff12\uff16-11-25T09:14:03Z",  # fullwidth digits
    ],
)
def test_other_timestamps_are_rejected(ts: str) -> None:
    assert event_errors(with_value(event(0), ("ts",), ts)) in (
        [("/ts", "string_pattern_mismatch")],
        [("/ts", "value_error")],
        [("/ts", "string_too_long")],
    )


def test_impossible_dates_say_why() -> None:
    with pytest.raises(ValidationError, match="not a valid calendar date"):
        EVENT.validate_python(with_value(event(0), ("ts",), "2026-02-30T00:00:00Z"))


# ---- BlobRef ----------------------------------------------------------------------------


def test_blob_ref_uri_must_name_its_sha256() -> None:
    assert BlobRef.model_validate(REF).size == REF["size"]
    other = hashlib.sha256(b"other").hexdigest()
    with pytest.raises(ValidationError, match="uri must end with the blob's sha256"):
        BlobRef.model_validate(with_value(REF, ("uri",), f"artifact://sha256/{other}"))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("uri", "s3://bucket/key"),
        ("uri", "https://example.com/x"),
        ("uri", "artifact://sha256/" + "A" * 64),
        ("uri", "artifact://sha1/" + "a" * 40),
        ("sha256", "A" * 64),
        ("sha256", "a" * 63),
        ("media_type", "text"),
        ("media_type", "Text/Plain"),
        ("media_type", "text/plain; charset=utf-8"),
    ],
)
def test_blob_ref_fields_are_checked(field: str, value: str) -> None:
    with pytest.raises(ValidationError) as caught:
        BlobRef.model_validate(with_value(REF, (field,), value))
    assert caught.value.errors()[0]["loc"] in ((field,), ())


def test_blob_ref_errors_point_into_the_event() -> None:
    raw = with_value(event(1, "cmd_run"), ("payload", "stdout_ref", "sha256"), "0" * 64)
    assert event_errors(raw) == [("/payload/stdout_ref", "value_error")]


# ---- file_edit rules ----------------------------------------------------------------------


def file_edit(**payload: Any) -> Any:
    base = {"path": "src/a.py", "change": "modify", "lines_added": 1, "lines_removed": 0}
    return with_value(event(0, "file_edit"), ("payload",), base | payload)


def test_diff_inline_or_as_ref_or_neither() -> None:
    assert is_valid_event(file_edit(diff="@@ -1 +1 @@\n"))
    assert is_valid_event(file_edit(diff_ref=REF))
    assert is_valid_event(file_edit())
    assert is_valid_event(file_edit(diff="", diff_ref=None))
    assert event_errors(file_edit(diff="@@", diff_ref=REF)) == [("/payload", "value_error")]
    with pytest.raises(ValidationError, match="not both"):
        EVENT.validate_python(file_edit(diff="", diff_ref=REF))


def test_old_path_is_required_for_a_rename_and_only_for_a_rename() -> None:
    assert is_valid_event(file_edit(change="rename", old_path="src/old.py"))
    assert is_valid_event(file_edit(change="modify", old_path=None))
    assert event_errors(file_edit(change="rename")) == [("/payload", "value_error")]
    assert event_errors(file_edit(change="rename", old_path=None)) == [("/payload", "value_error")]
    for change in ("add", "modify", "delete"):
        with pytest.raises(ValidationError, match="old_path is required for a rename"):
            EVENT.validate_python(file_edit(change=change, old_path="src/old.py"))


# ---- chunk body -------------------------------------------------------------------------


def test_a_chunk_holds_one_to_max_events() -> None:
    assert len(ChunkBody.model_validate({"events": events(0, 1)}).events) == 1
    full = ChunkBody.model_validate({"events": events(0, MAX_EVENTS_PER_CHUNK)})
    assert len(full.events) == MAX_EVENTS_PER_CHUNK
    assert chunk_errors({"events": []}) == [("/events", "too_short")]
    assert chunk_errors({"events": events(0, MAX_EVENTS_PER_CHUNK + 1)}) == [
        ("/events", "too_long")
    ]


def test_a_chunk_must_be_an_object_with_an_events_list() -> None:
    assert chunk_errors([]) == [("", "model_type")]
    assert chunk_errors({}) == [("/events", "missing")]
    assert chunk_errors({"events": {"0": event(0)}}) == [("/events", "list_type")]


def test_event_type_must_be_known() -> None:
    assert chunk_errors({"events": [with_value(event(0), ("type",), "note")]}) == [
        ("/events/0", "union_tag_invalid")
    ]
    assert chunk_errors({"events": [without(event(0), ("type",))]}) == [
        ("/events/0", "union_tag_not_found")
    ]


def test_payload_must_match_the_event_type() -> None:
    raw = with_value(event(0, "file_edit"), ("payload",), event(4, "rationale_note")["payload"])
    errors = event_errors(raw)
    assert ("/payload/kind", "extra_forbidden") in errors
    assert ("/payload/path", "missing") in errors


# ---- JSON pointers ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("loc", "pointer"),
    [
        ((), ""),
        (("events",), "/events"),
        (("events", 3, "cmd_run", "payload", "argv", 1), "/events/3/payload/argv/1"),
        (("events", 0, "file_edit", "payload"), "/events/0/payload"),
        (("events", 0, "rationale_note", "ts", "function-after[_utc_instant()]"), "/events/0/ts"),
        (("payload", "commit"), "/payload/commit"),  # a tag name not after an index is a key
        (("a~b", "c/d"), "/a~0b/c~1d"),
        (("~1",), "/~01"),  # ~ is escaped first, so a literal "~1" stays distinguishable
        (("a/~b",), "/a~1~0b"),
        (("",), "/"),
    ],
)
def test_json_pointer(loc: tuple[Any, ...], pointer: str) -> None:
    assert json_pointer(loc) == pointer


def test_field_errors_carry_pointers_and_messages() -> None:
    body = {"events": [event(0), with_value(event(1, "cmd_run"), ("payload", "argv"), [])]}
    with pytest.raises(ValidationError) as caught:
        ChunkBody.model_validate(body)
    [error] = field_errors(caught.value.errors())
    assert error.pointer == "/events/1/payload/argv"
    assert "at least 1 item" in error.message


# ---- prepare_chunk ----------------------------------------------------------------------


def body_of(raw_events: list[dict[str, Any]]) -> bytes:
    return orjson.dumps({"events": raw_events})


def pointers(error: InvalidInput) -> list[str]:
    return [e.pointer for e in error.errors]


def test_prepare_chunk_reports_json_syntax_errors_at_the_root() -> None:
    with pytest.raises(InvalidInput, match="not valid JSON") as caught:
        prepare_chunk(b'{"events": [', 0)
    assert pointers(caught.value) == [""]


def test_prepare_chunk_reports_schema_errors_with_pointers() -> None:
    bad = with_value(event(1, "cmd_run"), ("payload", "exit_code"), 300)
    with pytest.raises(InvalidInput, match="chunk body is invalid") as caught:
        prepare_chunk(body_of([event(0), bad]), 0)
    assert pointers(caught.value) == ["/events/1/payload/exit_code"]


def test_prepare_chunk_refuses_non_contiguous_seqs() -> None:
    raw = events(0, 4)
    raw[2] = event(3)
    raw[3] = event(4)
    with pytest.raises(InvalidInput, match="inconsistent") as caught:
        prepare_chunk(body_of(raw), 0)
    assert pointers(caught.value) == ["/events/2/seq", "/events/3/seq"]
    assert caught.value.errors[0].message == "expected seq 2 (contiguous), got 3"


def test_prepare_chunk_refuses_a_first_chunk_not_starting_at_zero() -> None:
    with pytest.raises(InvalidInput) as caught:
        prepare_chunk(body_of(events(1, 3)), 0)
    assert caught.value.errors == [
        FieldError("/events/0/seq", "the first chunk must start at event seq 0, got 1")
    ]


def test_prepare_chunk_refuses_a_chunk_starting_before_its_own_seq() -> None:
    with pytest.raises(InvalidInput) as caught:
        prepare_chunk(body_of(events(2, 3)), 3)
    assert pointers(caught.value) == ["/events/0/seq"]
    assert prepare_chunk(body_of(events(3, 3)), 3).first_event_seq == 3


def test_prepare_chunk_refuses_duplicate_event_ids() -> None:
    raw = [event(0, event_id="a"), event(1, event_id="b"), event(2, event_id="a")]
    with pytest.raises(InvalidInput) as caught:
        prepare_chunk(body_of(raw), 0)
    assert caught.value.errors == [
        FieldError("/events/2/event_id", "duplicate event_id 'a', first used at /events/0")
    ]


def test_prepare_chunk_reports_every_inconsistency() -> None:
    raw = [event(1, event_id="a"), event(2, event_id="a"), event(4, event_id="c")]
    with pytest.raises(InvalidInput) as caught:
        prepare_chunk(body_of(raw), 0)
    assert pointers(caught.value) == ["/events/0/seq", "/events/1/event_id", "/events/2/seq"]


def test_prepare_chunk_result() -> None:
    raw = events(10, 5)
    prepared = prepare_chunk(body_of(raw), 2)
    assert (prepared.chunk_seq, prepared.first_event_seq, prepared.last_event_seq) == (2, 10, 14)
    assert prepared.event_ids == tuple(e["event_id"] for e in raw)
    assert prepared.body == b'{"events":[' + b",".join(prepared.canonical_events) + b"]}"
    assert prepared.sha256 == hashlib.sha256(prepared.body).hexdigest()
    assert [orjson.loads(e) for e in prepared.canonical_events] == raw


def _reorder_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _reorder_keys(value[key]) for key in reversed(list(value))}
    if isinstance(value, list):
        return [_reorder_keys(item) for item in value]
    return value


def test_equivalent_bodies_have_the_same_canonical_form_and_digest() -> None:
    raw = events(0, 10)
    raw[1]["payload"]["argv"].append('naïve \u2028 \U0001f600 "q" \\ \x7f')
    compact = body_of(raw)

    spelled_out = copy(raw)
    spelled_out[0]["payload"] |= {"old_path": None, "diff_ref": None}
    spelled_out[1]["payload"]["stderr_ref"] = None
    spelled_out[3]["payload"]["diff_ref"] = None
    spelled_out[2]["payload"]["report_ref"] = None
    # Pretty, keys reversed at every level, every non-ASCII character \u-escaped.
    verbose = json.dumps({"events": _reorder_keys(spelled_out)}, indent=3, ensure_ascii=True)
    assert verbose.isascii()
    assert not compact.isascii()

    one, other = prepare_chunk(compact, 0), prepare_chunk(verbose.encode(), 0)
    assert other.sha256 == one.sha256
    assert other.body == one.body
    assert other.canonical_events == one.canonical_events


def test_defaults_are_part_of_the_canonical_form() -> None:
    """failing_tests defaults to []: leaving it out and sending [] are the same event."""
    raw = with_value(event(2, "test_run"), ("payload", "failing_tests"), [])
    absent = without(raw, ("payload", "failing_tests"))
    with_list = prepare_chunk(body_of([*events(0, 2), raw]), 0)
    without_list = prepare_chunk(body_of([*events(0, 2), absent]), 0)
    assert with_list.sha256 == without_list.sha256
    assert b'"failing_tests":[]' in without_list.canonical_events[2]


def test_different_events_have_different_digests() -> None:
    raw = events(0, 3)
    changed = with_value(raw, (2, "payload", "passed"), 40)
    assert prepare_chunk(body_of(raw), 0).sha256 != prepare_chunk(body_of(changed), 0).sha256


# ---- JSON numbers and ECMA-compatible patterns -------------------------------------------


def test_whole_number_floats_in_json_are_integers_and_store_as_integers() -> None:
    # JSON Schema's `integer` admits 3.0; the server reads JSON the same way.
    plain = body_of(events(0, 3))
    as_floats = plain.replace(b'"seq":1,', b'"seq":1.0,').replace(b'"seq":2,', b'"seq":2e0,')
    assert as_floats != plain
    assert prepare_chunk(as_floats, 0).body == prepare_chunk(plain, 0).body


def test_fractional_numbers_are_still_refused_where_an_integer_is_expected() -> None:
    body = body_of(events(0, 2)).replace(b'"seq":1,', b'"seq":1.5,')
    with pytest.raises(InvalidInput) as caught:
        prepare_chunk(body, 0)
    assert any(e.pointer == "/events/1/seq" for e in caught.value.errors)


@pytest.mark.parametrize("char", ["\x85", " ", "\t", "\x00", "\x7f", "\x9f"])
def test_repository_url_refuses_spaces_and_control_characters(char: str) -> None:
    metadata = trace_metadata()
    metadata["repository"]["url"] = f"https://git.example.com/a{char}b.git"
    with pytest.raises(ValidationError):
        TraceMetadata.model_validate(metadata)


def test_repository_url_pattern_means_the_same_in_ecma_and_python_regexes() -> None:
    pattern = TraceMetadata.model_json_schema()["$defs"]["Repository"]["properties"]["url"][
        "pattern"
    ]
    assert "\\s" not in pattern  # Python's \s matches U+0085, ECMA 262's does not


@pytest.mark.parametrize(
    "ts",
    [
        "0000-00-00T00:00:00Z",
        "0000-01-01T00:00:00Z",
        "2026-00-01T00:00:00Z",
        "2026-01-00T00:00:00Z",
        "2026-01-32T00:00:00Z",
        "2026-01-01T24:00:00Z",
        "2026-01-01T00:60:00Z",
        "2026-01-01T00:00:60Z",
    ],
)
def test_published_ts_pattern_refuses_impossible_fields(ts: str) -> None:
    import re

    schema = TypeAdapter(Event).json_schema()
    pattern = schema["$defs"]["CmdRunEvent"]["properties"]["ts"]["pattern"]
    assert re.search(pattern, ts) is None
    assert not is_valid_event(with_value(event(1, "cmd_run"), ("ts",), ts))


def test_published_ts_is_a_date_time_and_admits_real_ones() -> None:
    import re

    schema = TypeAdapter(Event).json_schema()
    ts = schema["$defs"]["CmdRunEvent"]["properties"]["ts"]
    assert ts["format"] == "date-time"
    for real in ("0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999999Z", "2024-02-29T12:00:00Z"):
        assert re.search(ts["pattern"], real), real
