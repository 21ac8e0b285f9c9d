"""Trajectory records (prtrace.dataset.trajectory): one step per event with what was done
and what came back, outputs clipped head and tail within the caps, unreadable artifacts
named, judge citations as step indexes, an OpenAI chat whose every tool reply answers the
call before it, and a JSON line that datasets, pandas, pyarrow and DuckDB all load."""

from __future__ import annotations

import hashlib
import itertools
from pathlib import Path
from typing import Any

import orjson
import pytest

from prtrace.dataset.rows import TraceBundle, export_json, swebench_instance
from prtrace.dataset.trajectory import (
    ObservationCaps,
    Trajectory,
    clip,
    shares,
    trajectory,
    truncation_marker,
)
from prtrace.judge.result import DimensionScore, JudgeResult
from prtrace.judge.rubric import DIMENSION_IDS
from tests.factories import blob_ref, event
from tests.judge_factories import (
    SAMPLE,
    SessionBuilder,
    document,
    flagged_qa_report,
    qa_report,
    sample_document,
)
from tests.pipeline_factories import judge_result

TRACE = "tr_traj_test"
SECRET = "export AWS_KEY=[REDACTED:aws-access-key:hmac-sha256=" + "5e" * 32 + "]"
SMALL_OUT = b"collected 6 items\n" + SECRET.encode() + b"\n1 failed, 5 passed\n"
STDERR = b"warning: deprecated option\n"
EDIT_DIFF = b"--- a/ranges/merge.py\n+++ b/ranges/merge.py\n@@ -1 +1 @@\n-old\n+new\n"
COMMIT_DIFF = b"diff --git a/ranges/merge.py b/ranges/merge.py\n" + EDIT_DIFF
REPORT = b'<testsuite tests="6" failures="0"/>'
LOST = b"this stdout was never stored"
# 40 KB of output with multi-byte characters everywhere, so any cut may split one.
HUGE_OUT = ("ok ✓ ünïcode\n" * 2_500).encode()


def store(*blobs: bytes) -> dict[str, bytes]:
    return {hashlib.sha256(blob).hexdigest(): blob for blob in blobs}


def sha(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()


def session_events() -> list[dict[str, Any]]:
    """Every event type, with outputs as artifacts (one of them unreadable)."""
    s = SessionBuilder()
    s.note("plan", f"Reproduce first. Found {SECRET} in the env; it stays redacted.")
    s.command(["python", "-m", "pytest", "-q"], exit_code=1)  # step 1: small stdout + stderr
    s.events[-1]["payload"] |= {"stdout_ref": blob_ref(SMALL_OUT), "stderr_ref": blob_ref(STDERR)}
    s.edit("ranges/merge.py")  # step 2: an inline diff
    s.edit("ranges/merge.py")  # step 3: the diff as an artifact
    payload = s.events[-1]["payload"]
    del payload["diff"]
    payload["diff_ref"] = blob_ref(EDIT_DIFF, "text/x-diff")
    s.test([], passed=6)  # step 4: with outcome, exit code and a report
    s.events[-1]["payload"] |= {
        "outcome": "passed",
        "exit_code": 0,
        "report_ref": blob_ref(REPORT, "application/xml"),
    }
    s.command(["cat", "big.log"], exit_code=0)  # step 5: output over the inline cap
    s.events[-1]["payload"]["stdout_ref"] = blob_ref(HUGE_OUT)
    s.command(["make"], exit_code=2)  # step 6: its stdout cannot be read
    s.events[-1]["payload"]["stdout_ref"] = blob_ref(LOST)
    s.note("decision", "Keep the open interval.")  # step 7
    s.commit("Keep the last interval", ["ranges/merge.py"])  # step 8: with its diff
    s.events[-1]["payload"]["diff_ref"] = blob_ref(COMMIT_DIFF, "text/x-diff")
    s.commit("Tidy up", ["ranges/merge.py"])  # step 9: without a diff
    s.note("observation", "All green.")  # step 10: a note nothing follows
    return s.events


DEFAULT_CAPS = ObservationCaps()
STORED = store(SMALL_OUT, STDERR, EDIT_DIFF, COMMIT_DIFF, REPORT, HUGE_OUT)


def scores(cited: list[str]) -> list[DimensionScore]:
    return [
        DimensionScore(
            dimension=dimension,
            score=4,
            rationale=f"{dimension}: reproduced at evt-0001, fixed at evt-0003.",
            cited_event_ids=cited,
        )
        for dimension in DIMENSION_IDS
    ]


def bundle(events: list[dict[str, Any]] | None = None, **fields: Any) -> TraceBundle:
    doc = document(events if events is not None else session_events(), trace_id=TRACE)
    values: dict[str, Any] = {
        "view": {"trace_id": TRACE, "status": "complete", "created_at": "2026-11-25T09:00:00Z"},
        "document": doc,
        "qa_report": qa_report("resolved", trace_id=TRACE),
        "judge_result": judge_result(TRACE, scores=scores(["evt-0001", "evt-0003", "nope"])),
    }
    return TraceBundle(**(values | fields))


def build(caps: ObservationCaps = DEFAULT_CAPS, **fields: Any) -> Trajectory:
    return trajectory(bundle(**fields), STORED.get, caps)


def steps(result: Trajectory) -> list[dict[str, Any]]:
    """The steps with their JSON-text fields decoded."""
    decoded = []
    for step in result.record["steps"]:
        fields = ("action", "observation", "observation_missing", "artifacts")
        decoded.append(step | {key: orjson.loads(step[key]) for key in fields})
    return decoded


def clipped(text: str) -> tuple[bytes, int, bytes]:
    """A clipped text's head, the bytes dropped (as its marker says) and its tail."""
    head, _, rest = text.partition("\n[... ")
    count, _, tail = rest.partition(" bytes dropped ...]\n")
    assert text == head + truncation_marker(int(count)) + tail
    return head.encode(), int(count), tail.encode()


def test_one_step_per_event_in_seq_order():
    result = build()
    doc = bundle().document
    got = steps(result)
    assert [s["step"] for s in got] == list(range(len(doc.events)))
    assert [(s["seq"], s["event_id"], s["ts"], s["type"]) for s in got] == [
        (e.seq, e.event_id, e.ts, e.type) for e in doc.events
    ]
    record = result.record
    instance = swebench_instance(bundle())
    assert {k: record[k] for k in ("instance_id", "repo", "base_commit", "problem_statement")} == {
        k: instance[k] for k in ("instance_id", "repo", "base_commit", "problem_statement")
    }
    assert record["trace_id"] == TRACE


def test_a_command_step_has_its_command_and_its_output():
    step = steps(build())[1]
    assert step["action"] == {"command": ["python", "-m", "pytest", "-q"], "cwd": "/workspace"}
    assert step["observation"] == {
        "exit_code": 1,
        "duration_ms": 500,
        "stdout": SMALL_OUT.decode(),
        "stderr": STDERR.decode(),
    }
    assert not step["observation_truncated"]
    assert step["artifacts"] == [sha(SMALL_OUT), sha(STDERR)]
    assert step["observation_missing"] == []


def test_an_edit_step_carries_its_diff_inline_or_from_its_artifact():
    got = steps(build())
    inline, from_artifact = got[2], got[3]
    assert inline["action"]["diff"] == "@@ -1,1 +1,1 @@\n-old\n+new\n"
    assert inline["artifacts"] == []
    assert from_artifact["action"] == {
        "path": "ranges/merge.py",
        "change": "modify",
        "old_path": None,
        "diff": EDIT_DIFF.decode(),
        "lines_added": 1,
        "lines_removed": 1,
    }
    assert from_artifact["artifacts"] == [sha(EDIT_DIFF)]
    assert inline["observation"] is None
    assert from_artifact["observation"] is None


def test_a_test_step_has_its_counts_failing_tests_and_report():
    step = steps(build())[4]
    assert step["action"] == {"command": ["python", "-m", "pytest", "-q"], "framework": "pytest"}
    assert step["observation"] == {
        "passed": 6,
        "failed": 0,
        "errors": 0,
        "skipped": 0,
        "outcome": "passed",
        "exit_code": 0,
        "duration_ms": 800,
        "failing_tests": [],
        "report": REPORT.decode(),
    }
    builder = SessionBuilder()
    builder.test(["tests/test_x.py::test_a"])
    (only,) = steps(build(events=builder.events))
    assert only["observation"]["failing_tests"] == ["tests/test_x.py::test_a"]
    assert only["observation"]["report"] is None


def test_a_commit_step_has_its_message_and_its_diff_when_recorded():
    got = steps(build())
    with_diff, without = got[8], got[9]
    assert with_diff["action"]["message"] == "Keep the last interval"
    assert with_diff["action"]["files"] == ["ranges/merge.py"]
    assert len(with_diff["action"]["sha"]) == 40
    assert with_diff["observation"] == {"diff": COMMIT_DIFF.decode()}
    assert without["observation"] is None


def test_a_note_is_an_action_with_no_observation():
    note = steps(build())[7]
    assert note["action"] == {"kind": "decision", "text": "Keep the open interval."}
    assert note["observation"] is None
    assert not note["observation_truncated"]
    assert not note["action_truncated"]


def test_an_unreadable_artifact_is_named_and_the_rest_goes_on():
    result = build()
    lost = steps(result)[6]
    assert lost["observation_missing"] == [sha(LOST)]
    assert lost["observation"]["stdout"] is None
    assert lost["observation"]["exit_code"] == 2
    assert sha(LOST) not in result.artifacts
    listing = {a["sha256"]: a for a in orjson.loads(result.record["artifacts"])}
    assert listing[sha(LOST)]["exported"] is False
    reply = result.record["messages"][
        [m["tool_call_id"] for m in result.record["messages"]].index("call_6")
    ]
    assert f"[artifact {sha(LOST)} could not be read]" in reply["content"]


def test_an_artifact_within_the_cap_is_read_once():
    builder = SessionBuilder()
    for _ in range(3):
        builder.command(["make"], exit_code=0)
        builder.events[-1]["payload"]["stdout_ref"] = blob_ref(SMALL_OUT)
    reads: list[str] = []

    def counted(digest: str) -> bytes | None:
        reads.append(digest)
        return STORED.get(digest)

    result = trajectory(bundle(builder.events), counted)
    assert reads == [sha(SMALL_OUT)]
    assert [s["observation"]["stdout"] for s in steps(result)] == [SMALL_OUT.decode()] * 3
    assert list(result.artifacts) == [sha(SMALL_OUT)]


def test_bytes_that_are_not_the_named_artifact_count_as_unreadable():
    def wrong(digest: str) -> bytes | None:
        return b"other bytes" if digest == sha(SMALL_OUT) else STORED.get(digest)

    result = trajectory(bundle(), wrong)
    assert steps(result)[1]["observation_missing"] == [sha(SMALL_OUT)]
    assert sha(SMALL_OUT) not in result.artifacts


def test_oversized_output_keeps_head_and_tail_around_a_marker():
    caps = ObservationCaps(inline_bytes=1_000)
    big = steps(build(caps))[5]
    text = big["observation"]["stdout"]
    assert big["observation_truncated"]
    head, dropped, tail = clipped(text)
    assert HUGE_OUT.startswith(head)
    assert HUGE_OUT.endswith(tail)
    assert len(head) + dropped + len(tail) == len(HUGE_OUT)
    assert len(head) + len(tail) <= 1_000
    assert "\ufffd" not in text  # cut between characters
    # Within the artifact cap the whole output still travels beside the record.
    assert build(caps).artifacts[sha(HUGE_OUT)] == HUGE_OUT


def test_an_artifact_over_its_cap_is_referenced_not_exported():
    result = build(ObservationCaps(artifact_bytes=len(HUGE_OUT) - 1))
    assert sha(HUGE_OUT) not in result.artifacts
    assert sha(HUGE_OUT) in steps(result)[5]["artifacts"]
    listing = {a["sha256"]: a for a in orjson.loads(result.record["artifacts"])}
    assert listing[sha(HUGE_OUT)] == {
        "sha256": sha(HUGE_OUT),
        "size": len(HUGE_OUT),
        "media_type": "text/plain",
        "exported": False,
    }
    assert set(result.artifacts) == set(STORED) - {sha(HUGE_OUT)}


def test_a_steps_texts_share_the_inline_cap_shortest_whole():
    builder = SessionBuilder()
    builder.command(["make"], exit_code=1)
    builder.events[-1]["payload"] |= {
        "stdout_ref": blob_ref(STDERR),
        "stderr_ref": blob_ref(HUGE_OUT),
    }
    caps = ObservationCaps(inline_bytes=500)
    (step,) = steps(build(caps, events=builder.events))
    assert step["observation"]["stdout"] == STDERR.decode()
    head, _, tail = clipped(step["observation"]["stderr"])
    assert 500 - len(STDERR) - 6 <= len(head) + len(tail) <= 500 - len(STDERR)


def test_a_long_inline_diff_is_clipped_as_the_action():
    builder = SessionBuilder()
    builder.edit("ranges/merge.py", added=3_000, removed=0)
    (step,) = steps(build(ObservationCaps(inline_bytes=600), events=builder.events))
    assert step["action_truncated"]
    assert not step["observation_truncated"]
    assert "bytes dropped" in step["action"]["diff"]


def test_clip_cuts_between_utf8_characters_and_counts_the_bytes_dropped():
    data = "é€😀".encode() * 50
    for keep in range(len(data) + 1):
        text, cut = clip(data, keep)
        assert "\ufffd" not in text
        if not cut:
            assert text.encode() == data
            continue
        head, dropped, tail = clipped(text)
        assert len(head) + dropped + len(tail) == len(data)
        assert len(head) + len(tail) <= keep
    assert clip(b"\xff\xfeok", 10) == ("\ufffd\ufffdok", False)


def test_shares_give_short_texts_all_they_need():
    assert shares({"a": 10, "b": 1_000}, 100) == {"a": 10, "b": 90}
    assert shares({"a": 80, "b": 80}, 100) == {"a": 50, "b": 50}
    assert shares({}, 100) == {}


def test_redacted_text_stays_as_stored():
    result = build()
    line = result.line().decode()
    assert orjson.dumps(SECRET).decode()[1:-1] in line
    assert SECRET in steps(result)[0]["action"]["text"]
    assert SECRET in steps(result)[1]["observation"]["stdout"]
    assert any(SECRET in (m["content"] or "") for m in result.record["messages"][2:])


def test_judge_citations_map_to_step_indexes_and_rationales_are_kept():
    judge = orjson.loads(build().record["judge"])
    assert judge["status"] == "ok"
    assert judge["overall"] == 3.75
    assert {s["dimension"] for s in judge["scores"]} == set(DIMENSION_IDS)
    for score in judge["scores"]:
        assert score["cited_event_ids"] == ["evt-0001", "evt-0003", "nope"]
        assert score["cited_steps"] == [1, 3]
        assert score["rationale"].endswith("fixed at evt-0003.")
    assert judge["stand_in"] is None


def test_the_offline_stand_in_is_kept_apart_and_labelled():
    unavailable = JudgeResult.model_validate(
        {
            "trace_id": TRACE,
            "judge": "openai:gpt-x",
            "rubric_version": "v2",
            "status": "judge_unavailable",
            "overall": None,
            "scores": [],
            "qa_verdict": "resolved",
            "stand_in": {
                "judge": "offline-heuristic v2",
                "overall": 3.0,
                "scores": scores(["evt-0004"]),
            },
        }
    )
    judge = orjson.loads(build(judge_result=unavailable).record["judge"])
    assert judge["judge"] == "openai:gpt-x"
    assert judge["overall"] is None
    assert judge["scores"] == []
    assert judge["stand_in"]["judge"] == "offline-heuristic v2"
    assert judge["stand_in"]["overall"] == 3.0
    assert judge["stand_in"]["scores"][0]["cited_steps"] == [4]


def test_qa_carries_the_verdict_and_its_evidence():
    qa = orjson.loads(build(qa_report=flagged_qa_report(trace_id=TRACE)).record["qa"])
    assert qa["verdict"] == "unresolved"
    assert qa["resolution"] == "partial"
    assert qa["flags"] == ["target_test_modified", "test_files_changed"]
    assert qa["tamper_flags"] == ["target_test_modified"]
    assert qa["target_tests"]
    assert qa["FAIL_TO_PASS"]
    assert set(qa) == {
        "verdict",
        "resolution",
        "verdict_reason",
        "FAIL_TO_PASS",
        "PASS_TO_PASS",
        "PASS_TO_FAIL",
        "target_tests",
        "flags",
        "tamper_flags",
    }


def test_without_qa_or_judge_their_fields_are_null_or_empty():
    record = build(qa_report=None, judge_result=None).record
    qa, judge = orjson.loads(record["qa"]), orjson.loads(record["judge"])
    assert qa["verdict"] is None
    assert qa["FAIL_TO_PASS"] == []
    assert qa["flags"] == []
    assert judge["judge"] is None
    assert judge["scores"] == []
    assert judge["stand_in"] is None
    assert orjson.loads(record["integrity"]) == {
        "chain_head": "0" * 64,
        "chain_key_id": "k1",
        "state_check": None,
    }


def test_messages_alternate_call_and_reply():
    result = build()
    messages = result.record["messages"]
    assert [m["role"] for m in messages[:2]] == ["system", "user"]
    assert "acme/ranges" in messages[0]["content"]
    assert messages[1]["content"] == result.record["problem_statement"]
    assert all(set(m) == {"role", "content", "tool_calls", "tool_call_id"} for m in messages)
    calls = 0
    for before, message in itertools.pairwise(messages):
        if message["role"] == "tool":
            assert before["role"] == "assistant"
            (call,) = before["tool_calls"]
            assert message["tool_call_id"] == call["id"]
            calls += 1
        if before["role"] == "assistant" and before["tool_calls"]:
            assert message["role"] == "tool"
    actions = [s for s in steps(result) if s["type"] != "rationale_note"]
    assert calls == len(actions)
    names = [m["tool_calls"][0]["function"]["name"] for m in messages if m["tool_calls"]]
    assert names == [
        "run_command",
        "edit_file",
        "edit_file",
        "run_tests",
        "run_command",
        "run_command",
        "commit",
        "commit",
    ]
    ids = [m["tool_calls"][0]["id"] for m in messages if m["tool_calls"]]
    assert ids == [f"call_{s['step']}" for s in actions]


def test_notes_are_the_assistants_words_before_its_next_call():
    messages = build().record["messages"]
    first_call = messages[2]
    assert first_call["content"].startswith("Plan: Reproduce first.")
    assert orjson.loads(first_call["tool_calls"][0]["function"]["arguments"]) == {
        "command": ["python", "-m", "pytest", "-q"],
        "cwd": "/workspace",
    }
    commit = next(m for m in messages if m["tool_calls"] and m["tool_calls"][0]["id"] == "call_8")
    assert commit["content"] == "Decision: Keep the open interval."
    assert orjson.loads(commit["tool_calls"][0]["function"]["arguments"]) == {
        "message": "Keep the last interval",
        "files": ["ranges/merge.py"],
    }
    assert messages[-1] == {
        "role": "assistant",
        "content": "Observation: All green.",
        "tool_calls": None,
        "tool_call_id": None,
    }


def test_tool_replies_render_what_came_back():
    messages = build().record["messages"]
    reply = {m["tool_call_id"]: m["content"] for m in messages if m["role"] == "tool"}
    assert (
        reply["call_1"] == f"exit code 1\nstdout:\n{SMALL_OUT.decode()}\nstderr:\n{STDERR.decode()}"
    )
    assert reply["call_3"] == "modify ranges/merge.py: +1 -1 lines"
    assert reply["call_4"].startswith(
        "6 passed, 0 failed, 0 errors, 0 skipped (outcome passed, exit code 0)"
    )
    assert reply["call_8"].startswith("committed ")
    assert COMMIT_DIFF.decode() in reply["call_8"]
    assert reply["call_9"].startswith("committed ")


def test_the_sample_trace_reads_its_artifacts():
    artifacts = store(*(p.read_bytes() for p in (SAMPLE / "artifacts").iterdir()))
    doc = sample_document()
    sample = TraceBundle({"trace_id": doc.trace_id}, doc, None, None)
    result = trajectory(sample, artifacts.get)
    referenced = {s for step in steps(result) for s in step["artifacts"]}
    assert referenced
    assert referenced == set(result.artifacts)
    assert all(step["observation_missing"] == [] for step in steps(result))


def test_same_bundle_same_bytes():
    first, second = build(), build()
    assert first.line() == second.line() == export_json(first.record) + b"\n"
    assert first.artifacts == second.artifacts
    assert list(first.artifacts) == sorted(first.artifacts)


def test_caps_are_byte_counts():
    with pytest.raises(ValueError, match="byte counts"):
        ObservationCaps(inline_bytes=-1)


# ---- loading ----------------------------------------------------------------------------


def variety() -> list[Trajectory]:
    """Records unlike each other: the session, the sample, a factory mix, no QA or judge,
    a stand-in judge, notes only."""
    doc = sample_document()
    sample = trajectory(TraceBundle({"trace_id": doc.trace_id}, doc, None, None), STORED.get)
    mix = [event(seq) for seq in range(12)]
    notes = [event(0, "rationale_note")]
    return [
        build(),
        sample,
        build(events=mix, qa_report=flagged_qa_report(trace_id=TRACE)),
        build(events=notes, qa_report=None, judge_result=None),
    ]


def write_jsonl(path: Path, records: list[Trajectory]) -> Path:
    path.write_bytes(b"".join(r.line() for r in records))
    return path


def test_the_file_loads_with_datasets_pandas_pyarrow_and_duckdb(tmp_path):
    import datasets
    import duckdb
    import pandas as pd
    import pyarrow.json as paj

    records = variety()
    path = write_jsonl(tmp_path / "trajectories.jsonl", records)
    loaded = datasets.load_dataset(
        "json", data_files=str(path), split="train", cache_dir=str(tmp_path / "hf")
    )
    assert loaded.num_rows == len(records)
    assert "harness" not in loaded.features  # not taken for an agent harness's log
    assert loaded[0]["messages"][2]["tool_calls"][0]["function"]["name"] == "run_command"
    assert orjson.loads(loaded[0]["steps"][1]["action"])["cwd"] == "/workspace"

    frame = pd.read_json(path, lines=True)
    assert list(frame["trace_id"]) == [r.record["trace_id"] for r in records]

    table = paj.read_json(path)
    assert table.num_rows == len(records)
    assert str(table.schema.field("steps").type.value_type.field("action").type) == "string"

    with duckdb.connect() as db:
        rows = db.execute(
            "select trace_id, len(steps), json_extract_string(qa, '$.verdict') "
            "from read_json_auto(?) order by trace_id",
            [str(path)],
        ).fetchall()
    assert len(rows) == len(records)


def test_fields_that_first_appear_late_in_a_big_file_still_load(tmp_path):
    """datasets infers types from the file's first chunk; a field null or empty there and
    set later (a stand-in judge, a missing artifact, a rename) must not break loading."""
    import datasets

    bare = SessionBuilder()
    bare.command(["make"], exit_code=0)  # no output recorded
    bare.edit("ranges/merge.py")
    plain = build(events=bare.events, qa_report=None, judge_result=None)
    late = build(
        judge_result=JudgeResult.model_validate(
            {
                "trace_id": TRACE,
                "judge": "openai:gpt-x",
                "rubric_version": "v2",
                "status": "judge_unavailable",
                "overall": None,
                "scores": [],
                "qa_verdict": None,
                "stand_in": {"judge": "offline-heuristic v2", "overall": 2.5, "scores": []},
            }
        )
    )
    path = write_jsonl(tmp_path / "t.jsonl", [plain] * 60 + [late])
    loaded = datasets.load_dataset(
        "json",
        data_files=str(path),
        split="train",
        cache_dir=str(tmp_path / "hf"),
        chunksize=4096,  # so the first chunk holds only the plain records
    )
    assert loaded.num_rows == 61
    assert orjson.loads(loaded[60]["judge"])["stand_in"]["overall"] == 2.5
    assert orjson.loads(loaded[60]["steps"][6]["observation_missing"]) == [sha(LOST)]
