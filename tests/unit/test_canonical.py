"""canonical_json (orjson, sorted keys) is byte-equal to RFC 8785 for everything trace
schema v1 admits, proven with hypothesis against the reference `rfc8785` package; and
check_canonicalizable refuses exactly the values where the two could differ."""

from __future__ import annotations

import string
from collections.abc import Callable
from typing import Any

import orjson
import pytest
import rfc8785
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from prtrace.canonical import NotCanonicalizable, canonical_json, check_canonicalizable
from prtrace.ingest.chunks import prepare_chunk
from prtrace.json_schema import json_schemas
from prtrace.schema import (
    MAX_BLOB_SIZE,
    MAX_DURATION_MS,
    MAX_EVENT_SEQ,
    MAX_LINE_COUNT,
    MAX_TEST_COUNT,
    ChunkBody,
    Event,
    TraceMetadata,
)
from tests.factories import event, trace_metadata

EVENT = TypeAdapter(Event)
# Three times the profile's examples: 300 in `make test`, 30 in `make test-fast`.
PROPERTY = settings(
    max_examples=3 * settings.default.max_examples,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
MAX_SAFE_INT = 2**53 - 1

# ---- strategies: schema-valid raw event dicts ------------------------------------------

# Characters where JSON serializers are known to disagree: C0 controls (short escapes
# and \u00XX), quote, backslash, slash, DEL, C1 controls, NBSP, U+2028/2029 (escaped by
# some JavaScript-minded encoders), BOM, noncharacters, astral planes.
TRICKY = (
    "\x00\x01\x07\x08\t\n\x0b\x0c\r\x1b\x1f \"\\/'<>&\x7f\x80\x9f\xa0\xe9\xff"
    "\u0300\u2028\u2029\u200b\ufeff\ufffd\ufffe\uffff\U0001f600\U0001f469\u200d\U0001f4bb"
    "\U0010ffff"
)
# Any Unicode scalar value (surrogates cannot be encoded as UTF-8), biased to TRICKY.
CHARS = st.one_of(st.characters(codec="utf-8"), st.sampled_from(TRICKY))
ALNUM = string.ascii_letters + string.digits
HEX = "0123456789abcdef"
ABSENT = object()


def text(min_size: int = 0, max_size: int = 24) -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(CHARS, min_size=min_size, max_size=max_size),
        st.text(st.sampled_from(TRICKY), min_size=min_size, max_size=max_size),
    )


def hex_digits(n: int) -> st.SearchStrategy[str]:
    return st.text(HEX, min_size=n, max_size=n)


event_ids = st.builds(str.__add__, st.sampled_from(ALNUM), st.text(ALNUM + "_.:-", max_size=127))
git_shas = st.one_of(hex_digits(40), hex_digits(64))
media_types = st.from_regex(r"[a-z0-9][a-z0-9.+-]{0,20}/[a-z0-9][a-z0-9.+-]{0,20}", fullmatch=True)
frameworks = st.from_regex(r"[a-z0-9][a-z0-9_.-]{0,31}", fullmatch=True)


@st.composite
def timestamps(draw: st.DrawFn) -> str:
    instant = draw(st.datetimes())
    fraction = draw(st.text("0123456789", max_size=9))
    return (
        f"{instant.year:04d}-{instant.month:02d}-{instant.day:02d}T"
        f"{instant.hour:02d}:{instant.minute:02d}:{instant.second:02d}"
        + (f".{fraction}" if fraction else "")
        + "Z"
    )


@st.composite
def blob_refs(draw: st.DrawFn) -> dict[str, Any]:
    digest = draw(hex_digits(64))
    return {
        "uri": f"artifact://sha256/{digest}",
        "sha256": digest,
        "size": draw(st.integers(0, MAX_BLOB_SIZE)),
        "media_type": draw(media_types),
    }


def put_optional(
    draw: st.DrawFn,
    payload: dict[str, Any],
    key: str,
    values: st.SearchStrategy[Any],
    *,
    nullable: bool = True,
) -> None:
    """The field absent, explicitly null (where the schema allows it), or a value."""
    choices: list[st.SearchStrategy[Any]] = [st.just(ABSENT), values]
    if nullable:
        choices.append(st.none())
    value = draw(st.one_of(choices))
    if value is not ABSENT:
        payload[key] = value


def absent_or_null(draw: st.DrawFn, payload: dict[str, Any], key: str) -> None:
    put_optional(draw, payload, key, st.nothing())


@st.composite
def payloads_file_edit(draw: st.DrawFn) -> dict[str, Any]:
    change = draw(st.sampled_from(["add", "modify", "delete", "rename"]))
    payload: dict[str, Any] = {
        "path": draw(text(min_size=1)),
        "change": change,
        "lines_added": draw(st.integers(0, MAX_LINE_COUNT)),
        "lines_removed": draw(st.integers(0, MAX_LINE_COUNT)),
    }
    if change == "rename":
        payload["old_path"] = draw(text(min_size=1))
    else:
        absent_or_null(draw, payload, "old_path")
    diff_mode = draw(st.sampled_from(["inline", "ref", "neither"]))
    if diff_mode == "inline":
        payload["diff"] = draw(text(max_size=200))
    else:
        absent_or_null(draw, payload, "diff")
    if diff_mode == "ref":
        payload["diff_ref"] = draw(blob_refs())
    else:
        absent_or_null(draw, payload, "diff_ref")
    return payload


@st.composite
def payloads_cmd_run(draw: st.DrawFn) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "argv": draw(st.lists(text(), min_size=1, max_size=6)),
        "cwd": draw(text(min_size=1)),
        "exit_code": draw(st.integers(-255, 255)),
        "duration_ms": draw(st.integers(0, MAX_DURATION_MS)),
    }
    put_optional(draw, payload, "stdout_ref", blob_refs())
    put_optional(draw, payload, "stderr_ref", blob_refs())
    return payload


@st.composite
def payloads_test_run(draw: st.DrawFn) -> dict[str, Any]:
    counts = st.integers(0, MAX_TEST_COUNT)
    payload: dict[str, Any] = {
        "framework": draw(frameworks),
        "command": draw(st.lists(text(), min_size=1, max_size=6)),
        "passed": draw(counts),
        "failed": draw(counts),
        "errors": draw(counts),
        "skipped": draw(counts),
    }
    # failing_tests defaults to [] and is not nullable.
    put_optional(
        draw, payload, "failing_tests", st.lists(text(min_size=1), max_size=5), nullable=False
    )
    put_optional(draw, payload, "duration_ms", st.integers(0, MAX_DURATION_MS))
    put_optional(draw, payload, "report_ref", blob_refs())
    return payload


@st.composite
def payloads_commit(draw: st.DrawFn) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "sha": draw(git_shas),
        "message": draw(text(min_size=1, max_size=80)),
        "files": draw(st.lists(text(min_size=1), max_size=5)),
    }
    put_optional(draw, payload, "diff_ref", blob_refs())
    return payload


@st.composite
def payloads_rationale_note(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "kind": draw(st.sampled_from(["hypothesis", "plan", "observation", "decision"])),
        "text": draw(text(min_size=1, max_size=80)),
    }


PAYLOADS: dict[str, Callable[[], st.SearchStrategy[dict[str, Any]]]] = {
    "file_edit": payloads_file_edit,
    "cmd_run": payloads_cmd_run,
    "test_run": payloads_test_run,
    "commit": payloads_commit,
    "rationale_note": payloads_rationale_note,
}


ANY_SEQ = st.integers(0, MAX_EVENT_SEQ)


@st.composite
def raw_events(draw: st.DrawFn, seq: st.SearchStrategy[int] = ANY_SEQ) -> dict[str, Any]:
    kind = draw(st.sampled_from(sorted(PAYLOADS)))
    return {
        "event_id": draw(event_ids),
        "seq": draw(seq),
        "ts": draw(timestamps()),
        "type": kind,
        "payload": draw(PAYLOADS[kind]()),
    }


@st.composite
def raw_chunks(draw: st.DrawFn) -> tuple[int, list[dict[str, Any]]]:
    """(chunk seq, events) that prepare_chunk accepts: contiguous seqs, unique ids."""
    count = draw(st.integers(1, 6))
    start = draw(st.integers(0, MAX_EVENT_SEQ - count + 1))
    chunk_seq = 0 if start == 0 else draw(st.integers(1, min(start, 999_999)))
    events = [draw(raw_events(st.just(start + i))) for i in range(count)]
    for index, item in enumerate(events):
        item["event_id"] = f"{item['event_id'][:120]}.{index}"  # unique within the chunk
    return chunk_seq, events


# Arbitrary JSON inside the subset canonical.py promises to handle: ASCII keys, safe ints.
json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-MAX_SAFE_INT, MAX_SAFE_INT),
        text(),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(
            st.text(st.characters(max_codepoint=0x7F), max_size=8), children, max_size=5
        ),
    ),
    max_leaves=20,
)


# ---- properties -------------------------------------------------------------------------


@PROPERTY
@given(raw_events())
def test_validated_events_canonicalize_exactly_as_rfc8785(raw: dict[str, Any]) -> None:
    model = EVENT.validate_python(raw)  # the strategy only builds schema-valid events
    dumped = model.model_dump(mode="json", exclude_none=True)  # what prtrace.ingest.chunks hashes
    check_canonicalizable(dumped)
    assert canonical_json(dumped) == rfc8785.dumps(dumped)


@PROPERTY
@given(raw_events())
def test_raw_event_dicts_canonicalize_exactly_as_rfc8785(raw: dict[str, Any]) -> None:
    check_canonicalizable(raw)
    assert canonical_json(raw) == rfc8785.dumps(raw)


@PROPERTY
@given(raw_events())
def test_canonical_form_is_a_fixed_point(raw: dict[str, Any]) -> None:
    """Parsing and re-validating a stored canonical event gives back the same bytes."""
    canonical = canonical_json(
        EVENT.validate_python(raw).model_dump(mode="json", exclude_none=True)
    )
    again = EVENT.validate_python(orjson.loads(canonical))
    assert canonical_json(again.model_dump(mode="json", exclude_none=True)) == canonical


@PROPERTY
@given(raw_chunks())
def test_prepared_chunk_body_is_the_rfc8785_form_of_the_chunk(
    chunk: tuple[int, list[dict[str, Any]]],
) -> None:
    chunk_seq, events = chunk
    prepared = prepare_chunk(orjson.dumps({"events": events}), chunk_seq)
    dumped = ChunkBody.model_validate({"events": events}).model_dump(mode="json", exclude_none=True)
    assert prepared.body == rfc8785.dumps(dumped)
    assert prepared.canonical_events == tuple(rfc8785.dumps(e) for e in dumped["events"])


@PROPERTY
@given(json_values)
def test_any_value_in_the_safe_subset_canonicalizes_exactly(value: Any) -> None:
    check_canonicalizable(value)
    assert canonical_json(value) == rfc8785.dumps(value)


def test_trace_metadata_canonicalizes_exactly() -> None:
    metadata = trace_metadata('Ünïcode \u2028 title \U0001f600 "quoted" \\ \x7f')
    dumped = TraceMetadata.model_validate(metadata).model_dump(mode="json")
    check_canonicalizable(dumped)
    assert canonical_json(dumped) == rfc8785.dumps(dumped)


# ---- the schema keeps every value inside the safe subset ----------------------------------


def _walk(node: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        found.append(node)
        for child in node.values():
            found.extend(_walk(child))
    elif isinstance(node, list):
        for child in node:
            found.extend(_walk(child))
    return found


@pytest.mark.parametrize("name", sorted(json_schemas()))
def test_schema_admits_no_floats_unbounded_ints_or_free_form_objects(name: str) -> None:
    """Structural guard: a future field that breaks the canonical subset fails here."""
    nodes = _walk(json_schemas()[name])
    integers = [n for n in nodes if n.get("type") == "integer"]
    assert integers or name == "trace-metadata.schema.json", "lost the integer fields?"
    for node in nodes:
        assert node.get("type") != "number", f"{name}: a float-typed field: {node}"
        if node.get("type") == "object":
            assert node.get("additionalProperties") is False, f"{name}: open object {node}"
            assert all(key.isascii() for key in node["properties"]), node
    for node in integers:
        assert -MAX_SAFE_INT <= node["minimum"] <= node["maximum"] <= MAX_SAFE_INT, node


# ---- refusals: where orjson and RFC 8785 would differ --------------------------------------


def test_floats_are_refused_and_would_differ() -> None:
    for value, fast, reference in [(1.0, b"1.0", b"1"), (1e20, b"1e+20", b"1" + b"0" * 20)]:
        assert (orjson.dumps(value), rfc8785.dumps(value)) == (fast, reference)
    for refused in (1.0, 0.5, -0.0, 1e21, [0, {"a": 2.5}]):
        with pytest.raises(NotCanonicalizable, match="floats are not allowed"):
            check_canonicalizable(refused)


def test_floats_are_reported_with_their_pointer() -> None:
    with pytest.raises(NotCanonicalizable, match=r"^/a/1/b: floats"):
        check_canonicalizable({"a": [0, {"b": 0.1}]})


@pytest.mark.parametrize("value", [2**53, -(2**53), 2**63, -(2**64)])
def test_integers_beyond_2_53_are_refused(value: int) -> None:
    with pytest.raises(rfc8785.IntegerDomainError):
        rfc8785.dumps(value)  # the reference refuses them too; orjson would not agree
    with pytest.raises(NotCanonicalizable, match="beyond 2\\*\\*53"):
        check_canonicalizable({"n": value})


@pytest.mark.parametrize("value", [MAX_SAFE_INT, -MAX_SAFE_INT, 0])
def test_integers_up_to_2_53_minus_1_are_accepted(value: int) -> None:
    check_canonicalizable(value)
    assert canonical_json(value) == rfc8785.dumps(value)


def test_non_ascii_keys_are_refused_because_the_key_order_would_differ() -> None:
    # orjson sorts by code point; RFC 8785 by UTF-16 code unit: U+1F600 is D83D DE00 < FFFF.
    value = {"\uffff": 1, "\U0001f600": 2}
    assert canonical_json(value) != rfc8785.dumps(value)
    with pytest.raises(NotCanonicalizable, match="keys must be ASCII"):
        check_canonicalizable(value)
    with pytest.raises(NotCanonicalizable, match=r"^/x: keys must be ASCII"):
        check_canonicalizable({"x": {"é": 1}})


@pytest.mark.parametrize("value", [{1: "a"}, (1, 2), b"bytes", {1, 2}, object()])
def test_non_json_values_and_keys_are_refused(value: Any) -> None:
    with pytest.raises(NotCanonicalizable):
        check_canonicalizable(value)


def test_lone_surrogates_cannot_be_canonicalized() -> None:
    with pytest.raises(NotCanonicalizable):
        canonical_json({"text": "a\ud800"})
    with pytest.raises(rfc8785.CanonicalizationError):
        rfc8785.dumps({"text": "a\ud800"})


def _string_fields(raw: dict[str, Any]) -> list[tuple[Any, ...]]:
    paths: list[tuple[Any, ...]] = []

    def visit(node: Any, path: tuple[Any, ...]) -> None:
        if isinstance(node, dict):
            for key, child in node.items():
                if key != "type":
                    visit(child, (*path, key))
        elif isinstance(node, list):
            for index, child in enumerate(node):
                visit(child, (*path, index))
        elif isinstance(node, str):
            paths.append(path)

    visit(raw, ())
    return paths


def _with(raw: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    copy: dict[str, Any] = orjson.loads(orjson.dumps(raw))
    node: Any = copy
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return copy


FREE_TEXT_EVENTS = [
    event(0, "file_edit"),
    event(1, "cmd_run"),
    event(2, "test_run"),
    event(3, "commit"),
    event(4, "rationale_note"),
]


@pytest.mark.parametrize("raw", FREE_TEXT_EVENTS, ids=lambda raw: raw["type"])
def test_schema_rejects_lone_surrogates_in_every_string_field(raw: dict[str, Any]) -> None:
    """Regression guard: a lone surrogate is no Unicode scalar value, so neither orjson
    nor RFC 8785 can encode it. pydantic-core refuses it in every str field today; if
    that ever changed, canonical_json would raise on events the schema had accepted."""
    paths = _string_fields(raw)
    assert len(paths) >= 3
    for path in paths:
        with pytest.raises(ValidationError) as caught:
            EVENT.validate_python(_with(raw, path, "x\udc80"))
        assert any(e["type"] == "string_unicode" for e in caught.value.errors()), path
