"""The dataset builders (prtrace.dataset.rows) on documents from the test factories: the patch
between two workspace trees applies with `git apply`, the instances carry SWE-bench's
fields and prtrace's, the rows are flat, and the filters select as documented."""

from __future__ import annotations

import subprocess
from pathlib import Path

import orjson
import pytest

from examples.snapshots import REPO, SKIPPED, fixed_workspace
from prtrace.assemble.document import TraceDocument
from prtrace.dataset import files as export_files
from prtrace.dataset.collect import ResultKind, collect
from prtrace.dataset.files import MANIFEST_FILE, ExportError, Flagged, Unusable, write_export
from prtrace.dataset.rows import (
    EVENT_COLUMNS,
    ExportFilter,
    TraceBundle,
    event_rows,
    export_json,
    parse_ts,
    repository_slug,
    split_of,
    swebench_instance,
    trace_row,
)
from prtrace.judge.rubric import DIMENSION_IDS
from prtrace.patches import is_test_file, split_patch, workspace_patch
from prtrace.qa.report import QAReport
from tests.judge_factories import (
    FAILING_TEST,
    HOSTILE_TEST,
    document,
    flagged_qa_report,
    qa_report,
    sample_document,
    sample_events,
)
from tests.pipeline_factories import judge_result


def tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not SKIPPED & set(p.relative_to(root).parts)
    }


def write_tree(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def git_apply(root: Path, patch: str) -> None:
    subprocess.run(
        ["git", "apply", "--whitespace=nowarn", "-"],
        cwd=root,
        input=patch.encode(),
        check=True,
        capture_output=True,
    )


def bundle(patch: str = "", **fields) -> TraceBundle:
    document = sample_document()
    view = {"trace_id": document.trace_id, "status": "complete",
            "created_at": "2026-11-25T09:00:00.000Z"}  # fmt: skip
    values = {
        "view": view,
        "document": document,
        "qa_report": qa_report("resolved", trace_id=document.trace_id),
        "judge_result": judge_result(document.trace_id),
        "patch": patch,
        "patch_source": "snapshots" if patch else "none",
    }
    return TraceBundle(**(values | fields))


def test_the_patch_between_the_example_snapshots_is_the_recorded_fix(tmp_path):
    base = tree(REPO)
    final = tree(fixed_workspace(tmp_path / "final"))
    patch = workspace_patch(base, final)
    assert patch.startswith("diff --git a/ranges/merge.py b/ranges/merge.py\n")
    assert "+    if current is not None:\n" in patch
    target = write_tree(tmp_path / "base", base)
    git_apply(target, patch)
    assert tree(target) == final


def test_added_deleted_and_unterminated_files_apply(tmp_path):
    base = {
        "a.txt": b"one\ntwo\n",
        "gone.py": b"x = 1\n",
        "tail.txt": b"no newline",
        "same.txt": b"same\n",
        "blob.bin": b"\x00\x01",
    }
    final = {
        "a.txt": b"one\n2\n",
        "new/file.py": b"y = 2",
        "tail.txt": b"no newline\nnow two",
        "same.txt": b"same\n",
        "empty.txt": b"",
        "blob.bin": b"\x00\x02",
    }
    patch = workspace_patch(base, final)
    assert "blob.bin" not in patch  # binary files cannot travel in a text patch
    assert "same.txt" not in patch
    target = write_tree(tmp_path / "t", base)
    git_apply(target, patch)
    expected = dict(final, **{"blob.bin": base["blob.bin"]})
    assert tree(target) == expected
    assert workspace_patch(base, final) == patch  # deterministic


def test_split_patch_puts_test_files_in_the_test_patch():
    base = {"src/m.py": b"a\n", "tests/test_m.py": b"t\n", "pkg/m_test.go": b"g\n"}
    final = {"src/m.py": b"b\n", "tests/test_m.py": b"u\n", "pkg/m_test.go": b"h\n"}
    code, tests = split_patch(workspace_patch(base, final))
    assert "src/m.py" in code
    assert "tests/" not in code
    assert "m_test.go" not in code
    assert "tests/test_m.py" in tests
    assert "pkg/m_test.go" in tests
    assert code + tests != ""
    assert sorted((code + tests).splitlines()) == sorted(workspace_patch(base, final).splitlines())


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("tests/test_ranges.py", True),
        ("src/pkg/testing/util.py", True),
        ("conftest.py", True),
        ("web/app.spec.ts", True),
        ("ranges/merge.py", False),
        ("docs/testimonials.md", False),
    ],
)
def test_test_files_are_recognized(path, expected):
    assert is_test_file(path) is expected


@pytest.mark.parametrize(
    ("url", "slug"),
    [
        ("https://git.example.com/acme/ranges.git", "acme/ranges"),
        ("git@github.com:acme/ranges.git", "acme/ranges"),
        ("ssh://git@host:22/group/sub/repo", "sub/repo"),
        ("file:///srv/repos/ranges", "repos/ranges"),
    ],
)
def test_repository_slug(url, slug):
    assert repository_slug(url) == slug


def test_a_swebench_instance_has_swebenchs_fields_and_prtraces():
    patch = workspace_patch({"ranges/merge.py": b"a\n", "tests/test_x.py": b"1\n"},
                            {"ranges/merge.py": b"b\n", "tests/test_x.py": b"2\n"})  # fmt: skip
    instance = swebench_instance(bundle(patch))
    assert instance["instance_id"] == "acme__ranges-tr_sample"
    assert instance["repo"] == "acme/ranges"
    assert instance["base_commit"] == "9b2e4f6a8c0d1e3f5a7b9c1d3e5f7a9b1c3d5e7f"
    assert "ranges/merge.py" in instance["patch"]
    assert "tests/" not in instance["patch"]
    assert "tests/test_x.py" in instance["test_patch"]
    assert instance["FAIL_TO_PASS"] == ["tests/test_ranges.py::test_merge_keeps_last_interval"]
    assert len(instance["PASS_TO_PASS"]) == 5
    assert instance["problem_statement"].startswith("merge() drops the last interval\n\n")
    assert instance["trace_id"] == "tr_sample"
    assert instance["chain_head"] == "0" * 64
    assert instance["judge_overall"] == 3.75
    assert instance["judge_scores"] == dict.fromkeys(DIMENSION_IDS, 4)
    assert instance["patch_source"] == "snapshots"
    assert orjson.loads(export_json(instance)) == instance


def test_an_instance_says_its_test_patch_is_the_candidates_and_carries_the_qa_evidence():
    patch = workspace_patch({"tests/test_x.py": b"1\n"}, {"tests/test_x.py": b"2\n"})
    instance = swebench_instance(bundle(patch, qa_report=flagged_qa_report("tr_sample")))
    assert instance["test_patch_source"] == "candidate"
    assert instance["qa_target_tests"] == [FAILING_TEST, HOSTILE_TEST]
    assert instance["qa_target_source"] == "reproduction"
    assert instance["qa_unresolved_targets"] == [HOSTILE_TEST]
    assert instance["qa_resolution"] == "partial"
    assert instance["qa_verdict_reason"].startswith("1 of 2 target tests")
    assert instance["qa_flags"] == ["target_test_modified", "test_files_changed"]
    assert instance["qa_tamper_flags"] == ["target_test_modified"]


def test_a_trace_without_qa_or_judge_still_makes_an_instance():
    instance = swebench_instance(bundle(qa_report=None, judge_result=None))
    assert instance["FAIL_TO_PASS"] == instance["PASS_TO_PASS"] == []
    assert instance["patch"] == instance["test_patch"] == ""
    assert instance["test_patch_source"] == "none"
    assert instance["qa_verdict"] is None
    assert instance["judge_scores"] == dict.fromkeys(DIMENSION_IDS)
    assert (instance["qa_flags"], instance["qa_target_tests"], instance["qa_resolution"]) == (
        [], [], None
    )  # fmt: skip


def test_event_rows_are_typed_and_follow_the_document():
    document = sample_document()
    rows = list(event_rows(document))
    assert [r["seq"] for r in rows] == list(range(11))
    assert all(r["trace_id"] == "tr_sample" for r in rows)
    assert all(tuple(r) == EVENT_COLUMNS for r in rows)  # every column in every row
    edit = next(r for r in rows if r["type"] == "file_edit")
    assert (edit["path"], edit["change"]) == ("ranges/merge.py", "modify")
    assert edit["command"] is None
    assert edit["note_text"] is None
    run = next(r for r in rows if r["type"] == "cmd_run")
    assert run["exit_code"] == 1
    assert run["command"][:2] == ["python", "-m"]
    tests = next(r for r in rows if r["type"] == "test_run")
    assert tests["framework"] == "pytest"
    assert isinstance(tests["failing_tests"], list)
    # The payload stays whole: what a typed column leaves out (artifact refs) is in it.
    assert orjson.loads(run["payload"]) == document.events[run["seq"]].payload.model_dump(
        mode="json", exclude_none=True
    )


def test_parse_ts_keeps_microseconds_in_utc():
    parsed = parse_ts("2026-11-25T09:14:03.123456789Z")
    assert parsed.isoformat() == "2026-11-25T09:14:03.123456+00:00"
    assert parse_ts("0001-01-01T00:00:00Z").year == 1


def test_a_trace_row_carries_the_qa_evidence():
    row = trace_row(bundle(qa_report=flagged_qa_report("tr_sample")))
    assert row["fail_to_absent"] == ["tests/test_ranges.py::test_gone"]
    assert row["fail_to_skipped"] == ["tests/test_ranges.py::test_skipped"]
    assert row["qa_unresolved_targets"] == [HOSTILE_TEST]
    assert (row["qa_resolution"], row["qa_tamper_flags"]) == ("partial", ["target_test_modified"])


def test_a_trace_row_is_flat_with_a_column_per_score():
    row = trace_row(bundle())
    assert row["trace_id"] == "tr_sample"
    assert row["qa_verdict"] == "resolved"
    assert row["event_count"] == 11
    assert {f"score_{d}" for d in DIMENSION_IDS} <= set(row)
    assert orjson.loads(row["metrics"]) == sample_document().metrics
    assert all(not isinstance(v, dict) for v in row.values())


def view(**fields):
    base = {
        "trace_id": "tr_1",
        "status": "complete",
        "created_at": "2026-11-25T09:00:00.000Z",
        "metadata": {"repository": {"url": "https://git.example.com/acme/ranges.git"}},
        "outcome": {"qa": {"verdict": "resolved"}, "judge": {"overall": 3.5}},
    }
    return base | fields


@pytest.mark.parametrize(
    ("chosen", "item", "expected"),
    [
        (ExportFilter(), view(), True),
        (ExportFilter(), view(status="failed"), False),
        (ExportFilter(verdicts=frozenset({"unresolved"})), view(), False),
        (ExportFilter(verdicts=frozenset({"none"})), view(outcome={"qa": None}), True),
        (ExportFilter(min_overall=3.5), view(), True),
        (ExportFilter(min_overall=4.0), view(), False),
        (ExportFilter(min_overall=1.0), view(outcome={"judge": {"overall": None}}), False),
        (ExportFilter(since="2026-11-25T09:00:00Z"), view(), True),
        (ExportFilter(until="2026-11-25T09:00:00Z"), view(), False),
        (ExportFilter(since="2026-11-26T00:00:00Z"), view(), False),
        (ExportFilter(repositories=frozenset({"acme/ranges"})), view(), True),
        (
            ExportFilter(repositories=frozenset({"https://git.example.com/acme/ranges.git"})),
            view(),
            True,
        ),
        (ExportFilter(repositories=frozenset({"acme/other"})), view(), False),
    ],
)
def test_filters_on_the_trace_view(chosen, item, expected):
    assert chosen.matches_view(item) is expected


def test_score_thresholds_are_checked_on_the_judge_result():
    dimension = DIMENSION_IDS[0]
    assert ExportFilter(min_scores={dimension: 4}).matches_bundle(bundle())
    assert not ExportFilter(min_scores={dimension: 5}).matches_bundle(bundle())
    assert not ExportFilter(min_scores={dimension: 0}).matches_bundle(bundle(judge_result=None))
    assert ExportFilter().describe()["statuses"] == ["complete"]


def test_tamper_flags_leave_a_trace_out_unless_asked_for():
    flagged = bundle(qa_report=flagged_qa_report("tr_sample"))
    assert ExportFilter().left_out_for_flags(flagged) == ["target_test_modified"]
    assert ExportFilter(include_flagged=True).left_out_for_flags(flagged) == []
    # Flags that honest fixes raise too (changed tests or harness) leave nothing out.
    honest = flagged_qa_report("tr_sample", flags=[
        {"code": "test_files_changed", "blocking": False, "detail": "1 test file"},
        {"code": "harness_changed", "blocking": True, "detail": "conftest.py changed"},
    ])  # fmt: skip
    assert ExportFilter().left_out_for_flags(bundle(qa_report=honest)) == []
    assert ExportFilter().left_out_for_flags(bundle(qa_report=None)) == []
    assert ExportFilter().describe()["include_flagged"] is False


class MemorySource:
    """Complete traces held here, as a TraceSource gives them (no snapshots)."""

    def __init__(self, traces: dict[str, tuple[TraceDocument, QAReport | None]]) -> None:
        self.traces = traces

    def iter_views(self):
        for trace_id in self.traces:
            yield {"trace_id": trace_id, "status": "complete",
                   "created_at": "2026-11-25T09:00:00.000Z", "outcome": {}}  # fmt: skip

    def result(self, trace_id: str, kind: ResultKind) -> bytes | None:
        doc, report = self.traces[trace_id]
        if kind == "document":
            return doc.model_dump_json().encode()
        if kind == "qa-report":
            return None if report is None else report.model_dump_json().encode()
        return judge_result(trace_id).model_dump_json().encode()

    def artifact(self, trace_id: str, sha256: str) -> bytes:
        raise AssertionError("no snapshots here")


def flagged_and_clean_source() -> MemorySource:
    """tr_clean (resolved), tr_flagged (a tamper flag) and tr_noqa (QA did not run)."""
    traces: dict[str, tuple[TraceDocument, QAReport | None]] = {}
    for trace_id, report in (
        ("tr_clean", qa_report("resolved", trace_id="tr_clean")),
        ("tr_flagged", flagged_qa_report("tr_flagged")),
        ("tr_noqa", None),
    ):
        traces[trace_id] = (document(sample_events(), trace_id=trace_id), report)
    return MemorySource(traces)


TAKE_UNUSABLE = ExportFilter(include_unusable=True)


def test_an_export_leaves_flagged_traces_out_and_its_manifest_says_so(tmp_path):
    selection = collect(flagged_and_clean_source(), TAKE_UNUSABLE)
    bundles = list(selection)
    skipped, flagged = selection.skipped, selection.flagged
    assert [b.trace_id for b in bundles] == ["tr_clean", "tr_noqa"]
    assert skipped == []
    assert flagged == [Flagged("tr_flagged", ("target_test_modified",))]
    manifest = write_export(bundles, tmp_path, formats=["swebench"], chosen=TAKE_UNUSABLE,
                            skipped=skipped, flagged=flagged)  # fmt: skip
    assert manifest["trace_ids"] == ["tr_clean", "tr_noqa"]
    assert manifest["flagged_left_out"] == [
        {"trace_id": "tr_flagged", "flags": ["target_test_modified"]}
    ]
    assert (manifest["flagged_left_out_count"], manifest["flagged_count"]) == (1, 0)
    assert manifest["filter"]["include_flagged"] is False
    assert orjson.loads((tmp_path / MANIFEST_FILE).read_bytes()) == manifest


def test_an_export_asked_to_include_flagged_traces_takes_them_and_counts_them(tmp_path):
    chosen = ExportFilter(include_flagged=True, include_unusable=True)
    selection = collect(flagged_and_clean_source(), chosen)
    bundles = list(selection)
    assert [b.trace_id for b in bundles] == ["tr_clean", "tr_flagged", "tr_noqa"]
    assert selection.flagged == []
    manifest = write_export(bundles, tmp_path, formats=["swebench", "parquet"], chosen=chosen)
    assert (manifest["flagged_left_out"], manifest["flagged_count"]) == ([], 1)
    lines = (tmp_path / "instances.jsonl").read_bytes().splitlines()
    instances = [orjson.loads(line) for line in lines]
    taken = {i["trace_id"]: i["qa_tamper_flags"] for i in instances}
    assert taken == {"tr_clean": [], "tr_flagged": ["target_test_modified"], "tr_noqa": []}
    import pyarrow.parquet as pq

    rows = pq.read_table(tmp_path / "traces.parquet").to_pylist()
    assert [r["qa_flags"] for r in rows] == [
        [], ["target_test_modified", "test_files_changed"], []
    ]  # fmt: skip
    assert [r["qa_resolution"] for r in rows] == [None, "partial", None]


def _stand_in_result():
    offline = judge_result("tr_sample")
    return judge_result(
        "tr_sample",
        judge="openai:gpt-4.1-mini",
        status="judge_unavailable",
        overall=None,
        scores=[],
        stand_in={"judge": offline.judge, "overall": offline.overall, "scores": offline.scores},
    )


def test_the_export_says_which_judge_scored_and_keeps_a_stand_in_apart(tmp_path):
    scored, standing_in = bundle(), bundle(judge_result=_stand_in_result())
    instance = swebench_instance(standing_in)
    assert (instance["judge"], instance["judge_status"]) == (
        "openai:gpt-4.1-mini",
        "judge_unavailable",
    )
    assert instance["judge_overall"] is None  # no model score exists
    assert instance["judge_scores"] == dict.fromkeys(DIMENSION_IDS)
    assert (instance["judge_stand_in"], instance["judge_stand_in_overall"]) == (
        "offline-heuristic v1",
        3.75,
    )
    assert swebench_instance(scored)["judge"] == "offline-heuristic v1"
    assert swebench_instance(scored)["judge_stand_in"] is None
    write_export([scored, standing_in], tmp_path, formats=["parquet"], chosen=ExportFilter())
    import pyarrow.parquet as pq

    rows = pq.read_table(tmp_path / "traces.parquet").to_pylist()
    assert [(r["judge"], r["judge_overall"], r["judge_stand_in_overall"]) for r in rows] == [
        ("offline-heuristic v1", 3.75, None),
        ("openai:gpt-4.1-mini", None, 3.75),
    ]


# ---- all or nothing: an export is whole, or it leaves the directory as it was ----------


def _no_partials(parent: Path) -> bool:
    return not any(".partial-" in p.name for p in parent.iterdir())


def test_parquet_without_pyarrow_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    """The client-only install has no pyarrow: the export stops at once, naming the extra,
    and writes nothing (it once wrote two files, then stopped with no manifest)."""
    monkeypatch.setitem(__import__("sys").modules, "pyarrow", None)
    bundles = list(collect(flagged_and_clean_source(), TAKE_UNUSABLE))
    out = tmp_path / "export"
    with pytest.raises(ExportError, match=r"pip install 'prtrace\[export\]'"):
        write_export(bundles, out, chosen=ExportFilter())
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ExportError, match="pyarrow"):
        export_files.check_formats(["swebench", "parquet"])
    assert export_files.check_formats(["events", "swebench", "events"]) == ["events", "swebench"]


def test_an_export_that_fails_midway_leaves_no_file_and_no_staging(tmp_path, monkeypatch):
    bundles = list(collect(flagged_and_clean_source(), TAKE_UNUSABLE))

    def broken(*_args, **_kwargs):
        raise OSError("disk full")

    # The instances are written first; the Parquet tables fail after them.
    monkeypatch.setattr(export_files._ParquetRows, "close", broken)
    out = tmp_path / "export"
    with pytest.raises(OSError, match="disk full"):
        write_export(bundles, out, chosen=ExportFilter())
    assert not out.exists()
    assert _no_partials(tmp_path)


def test_an_export_never_writes_into_a_directory_that_holds_files(tmp_path):
    bundles = list(collect(flagged_and_clean_source(), TAKE_UNUSABLE))
    out = tmp_path / "export"
    first = write_export(bundles, out, formats=["swebench"], chosen=ExportFilter())
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(ExportError, match="not empty"):
        write_export(bundles, out, formats=["events"], chosen=ExportFilter())
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert set(before) == {"instances.jsonl", "README.md", MANIFEST_FILE}
    assert first["files"]["instances.jsonl"]["rows"] == 2
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(ExportError, match="is a file"):
        write_export(bundles, tmp_path / "a-file", formats=["events"], chosen=ExportFilter())
    assert _no_partials(tmp_path)


# ---- usable instances: what the default export takes --------------------------------


CODE_PATCH = workspace_patch({"ranges/merge.py": b"a\n"}, {"ranges/merge.py": b"b\n"})


def with_base(doc: TraceDocument, dirty: bool | None) -> TraceDocument:
    repository = doc.metadata.repository.model_copy(update={"dirty": dirty})
    metadata = doc.metadata.model_copy(update={"repository": repository})
    return doc.model_copy(update={"metadata": metadata})


TARGET = "tests/test_ranges.py::test_merge_keeps_last_interval"


def targeted_report(verdict: str = "resolved", **fields) -> QAReport:
    return qa_report(verdict, trace_id="tr_sample", target_tests=[TARGET], **fields)


def usable_bundle(**fields) -> TraceBundle:
    values = {"document": with_base(sample_document(), False), "qa_report": targeted_report()}
    return bundle(CODE_PATCH, **(values | fields))


def test_an_instance_with_a_code_patch_target_tests_and_a_clean_base_is_usable():
    instance = swebench_instance(usable_bundle())
    assert (instance["usable"], instance["unusable_reasons"]) == (True, [])
    assert instance["base_dirty"] is False
    assert trace_row(usable_bundle())["usable"] is True


@pytest.mark.parametrize(
    ("fields", "reasons"),
    [
        ({"patch": ""}, ["no_patch"]),
        # A fix that only touched tests is no fix to train on.
        ({"patch": workspace_patch({"tests/test_x.py": b"1\n"}, {"tests/test_x.py": b"2\n"})},
         ["no_patch"]),
        ({"qa_report": None}, ["no_qa", ]),
        ({"qa_report": qa_report("error", trace_id="tr_sample", target_tests=[])},
         ["qa_error", "no_target_tests"]),
        ({"qa_report": qa_report("resolved", trace_id="tr_sample", target_tests=[])},
         ["no_target_tests"]),
        ({"qa_report": flagged_qa_report("tr_sample")}, ["tamper_flags"]),
        ({"document": with_base(sample_document(), True)}, ["base_dirty"]),
        ({"document": with_base(sample_document(), None)}, ["base_unrecorded"]),
    ],
)  # fmt: skip
def test_each_reason_makes_an_instance_unusable(fields, reasons):
    instance = swebench_instance(usable_bundle() if not fields else _replace(fields))
    assert instance["usable"] is False
    assert instance["unusable_reasons"] == reasons


def _replace(fields) -> TraceBundle:
    values = {"patch": CODE_PATCH, "document": with_base(sample_document(), False),
              "qa_report": targeted_report()} | fields  # fmt: skip
    return bundle(**values)


def test_an_unresolved_fix_is_still_usable_data():
    report = targeted_report("unresolved")
    assert swebench_instance(usable_bundle(qa_report=report))["usable"] is True


def test_the_default_export_takes_usable_instances_only_and_says_why_it_left_others_out(
    tmp_path,
):
    selection = collect(flagged_and_clean_source(), ExportFilter())
    manifest = write_export(selection, tmp_path / "out", formats=["swebench"],
                            chosen=ExportFilter(), unusable=selection.unusable)  # fmt: skip
    assert manifest["trace_count"] == 0  # no snapshots: no patch; no `dirty` recorded
    assert selection.unusable == [
        Unusable("tr_clean", ("no_patch", "no_target_tests", "base_unrecorded")),
        Unusable("tr_noqa", ("no_patch", "no_qa", "base_unrecorded")),
    ]
    assert selection.flagged == [Flagged("tr_flagged", ("target_test_modified",))]
    assert manifest["unusable_left_out_count"] == 2
    with pytest.raises(RuntimeError, match="once"):
        list(selection)  # a second pass would read every trace again and count it twice
    assert manifest["unusable_left_out"][1] == {
        "trace_id": "tr_noqa", "reasons": ["no_patch", "no_qa", "base_unrecorded"]
    }  # fmt: skip
    assert manifest["filter"]["include_unusable"] is False


def test_splits_are_by_repository_and_stable():
    assert split_of("acme/ranges") == split_of("acme/ranges")
    names = [f"owner{i}/repo{i}" for i in range(400)]
    tests = sum(split_of(name) == "test" for name in names)
    assert 40 < tests < 120  # about a fifth of repositories
    instance = swebench_instance(usable_bundle())
    assert instance["split"] == split_of("acme/ranges")


def test_instances_carry_the_signed_trace_manifest_they_came_from():
    signed = {"manifest_sha256": "ab" * 32, "key_id": "k-2026", "algorithm": "ECDSA_SHA_256"}
    view = {"trace_id": "tr_sample", "status": "complete", "created_at": "2026-11-25T09:00:00Z",
            "outcome": {"provenance": signed}}  # fmt: skip
    instance = swebench_instance(usable_bundle(view=view))
    assert instance["trace_manifest_sha256"] == "ab" * 32
    assert instance["trace_manifest_key_id"] == "k-2026"
    assert swebench_instance(usable_bundle())["trace_manifest_sha256"] is None


def test_string_test_lists_are_swebenchs_encoding(tmp_path):
    out = tmp_path / "out"
    write_export([usable_bundle()], out, formats=["swebench"], string_test_lists=True)
    row = orjson.loads((out / "instances.jsonl").read_bytes())
    assert isinstance(row["FAIL_TO_PASS"], str)
    assert orjson.loads(row["FAIL_TO_PASS"]) == [
        "tests/test_ranges.py::test_merge_keeps_last_interval"
    ]
    assert orjson.loads((out / MANIFEST_FILE).read_bytes())["test_lists"] == "json-strings"


def test_a_lazy_selection_is_read_one_trace_at_a_time(tmp_path):
    """Streaming: the writer takes a trace, writes it everywhere and lets it go before it
    asks for the next; it never holds the selection."""
    import gc
    import weakref

    before: list[weakref.ref[TraceBundle]] = []

    def one_at_a_time():
        for trace_id in ("tr_a", "tr_b", "tr_c"):
            gc.collect()
            assert all(ref() is None for ref in before), "the writer still holds a trace"
            item = usable_bundle(document=with_base(
                document(sample_events(), trace_id=trace_id), False))  # fmt: skip
            before.append(weakref.ref(item))
            yield item
            del item

    formats = ["swebench", "events", "parquet"]
    manifest = write_export(one_at_a_time(), tmp_path / "out", formats=formats)
    assert manifest["trace_ids"] == ["tr_a", "tr_b", "tr_c"]
    assert manifest["files"]["events.jsonl"]["rows"] == 33
