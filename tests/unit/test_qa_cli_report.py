"""`prtrace qa`'s printed report (prtrace_cli.qa.print_report) on reports built here: the
held column, target marks, every test class, and after the table the verdict's evidence
(targets and their source, resolution, unresolved targets, flags, why) and the held run.
The sandboxed command itself is tested in tests/sandbox/test_cli_qa.py."""

from __future__ import annotations

import io
import re

from rich.console import Console

from prtrace_cli.qa import print_report
from tests.judge_factories import (
    FAILING_TEST,
    HOSTILE_PATH,
    HOSTILE_TEST,
    flagged_qa_report,
    qa_report,
)


def printed(report: object, width: int = 60) -> str:
    console = Console(file=io.StringIO(), width=width, color_system=None)
    print_report(report, console)  # type: ignore[arg-type]
    output = console.file.getvalue()  # type: ignore[attr-defined]
    assert isinstance(output, str)
    return output


def row_of(output: str, test_id: str) -> list[str]:
    (line,) = [line for line in output.splitlines() if line.startswith("│") and test_id in line]
    return [cell.strip() for cell in line.strip("│┃ ").split("│")]


def test_the_table_has_the_held_column_target_marks_and_every_class() -> None:
    output = printed(flagged_qa_report())
    header = next(line for line in output.splitlines() if "test" in line and "held" in line)
    assert [c.strip() for c in header.strip("┃ ").split("┃")] == [
        "test", "target", "base", "final", "held", "class", "changed by fix"
    ]  # fmt: skip
    assert row_of(output, FAILING_TEST)[1:6] == ["target", "failed", "passed", "passed",
                                                 "FAIL_TO_PASS"]  # fmt: skip
    assert row_of(output, "::test_gone")[1:6] == ["", "failed", "absent", "absent",
                                                  "FAIL_TO_ABSENT"]  # fmt: skip
    assert row_of(output, "::test_skipped")[5] == "FAIL_TO_SKIPPED"
    hostile = row_of(output, HOSTILE_TEST)  # never cut, and shown as text (no markup)
    assert hostile[0] == HOSTILE_TEST
    assert hostile[1:] == ["target", "failed", "failed", "failed", "FAIL_TO_FAIL", "modified"]


def test_after_the_table_the_evidence_of_the_verdict() -> None:
    lines = printed(flagged_qa_report()).splitlines()
    at = lines.index("target tests (2, from reproduction):")
    assert lines[at + 1 : at + 3] == [f"  {FAILING_TEST}", f"  {HOSTILE_TEST} (unresolved)"]
    assert "resolution: partial" in lines
    at = lines.index("unresolved targets (1):")
    assert lines[at + 1] == f"  {HOSTILE_TEST}"
    at = lines.index("flags (2, 1 blocking):")
    assert lines[at + 1] == "  test_files_changed (not blocking): the fix changed 1 test file"
    assert lines[at + 2] == "    tests/test_ranges.py"
    assert lines[at + 3] == (
        "  target_test_modified (blocking): the definition of a target test changed <b>bold</b>"
    )
    assert lines[at + 4] == f"    {HOSTILE_TEST}"
    assert lines[at + 5] == "    " + HOSTILE_PATH.replace("\n", "\\n")  # one line each
    assert "changed test files: tests/test_ranges.py" in lines
    assert "changed harness files: tests/conftest.py" in lines
    assert "why: 1 of 2 target tests did not pass and the fix modified a target test." in lines
    held = [line for line in lines if line.startswith("held (the base's tests")]
    assert held == ["held (the base's tests and harness on the final code): pytest ? (?), "
                    "workspace ?"]  # fmt: skip
    assert lines[-1] == (
        "verdict: unresolved - 1 fail→pass, 0 pass→fail, 5 pass→pass, 1 fail→absent, "
        "1 fail→skipped in 0.0 s"
    )


def test_long_ids_are_never_cut_or_wrapped_in_the_lists() -> None:
    long_id = "tests/test_ranges.py::test_" + "x" * 150
    report = flagged_qa_report(target_tests=[long_id], unresolved_targets=[long_id], tests=[])
    lines = printed(report, width=40).splitlines()
    assert lines.count(f"  {long_id} (unresolved)") == 1
    assert lines.count(f"  {long_id}") == 1


def test_a_report_without_the_new_evidence_prints_as_before() -> None:
    output = printed(qa_report("resolved"))
    for absent in ("target tests", "resolution", "flags", "why", "held", "FAIL_TO_ABSENT"):
        assert absent not in output, absent
    assert re.search(r"verdict: resolved - 1 fail→pass, 0 pass→fail, 5 pass→pass in", output)
