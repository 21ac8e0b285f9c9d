"""pytest results for test_run events: from a real run's JUnit report and from its
terminal output, which must agree."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from prtrace.schema import TestRunPayload
from prtrace_client.recorder.pytest_results import (
    from_output,
    is_pytest,
    pytest_outcome,
    read_results,
    with_junit_report,
)

FAILING = "tests/test_ranges.py::test_merge_keeps_last_interval"

MIXED = """
import pytest

def test_ok():
    pass

def test_bad():
    assert 1 == 2

@pytest.mark.skip(reason="later")
def test_later():
    pass

@pytest.fixture
def broken():
    raise RuntimeError("fixture")

def test_error(broken):
    pass

class TestGroup:
    @pytest.mark.parametrize("n", [1, 2])
    def test_param(self, n):
        assert n == 1
"""


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["pytest", "-q"], True),
        (["/venv/bin/pytest"], True),
        (["py.test"], True),
        (["python", "-m", "pytest", "tests"], True),
        ([".venv/bin/python3.11", "-m", "pytest"], True),
        (["uv", "run", "--frozen", "pytest", "-x"], True),
        (["python", "-m", "pip", "install", "pytest"], False),
        (["make", "test"], False),
        (["true"], False),
        (["uv", "run"], False),
    ],
)
def test_pytest_commands_are_recognised(argv: list[str], expected: bool) -> None:
    assert is_pytest(argv) is expected


def test_the_junit_report_option_goes_where_pytest_reads_it(tmp_path: Path) -> None:
    report = tmp_path / "r.xml"
    assert with_junit_report(["uv", "run", "pytest", "-q"], report) == [
        "uv", "run", "pytest", f"--junitxml={report}", "-o", "junit_family=xunit1", "-q",
    ]  # fmt: skip
    assert with_junit_report(["python", "-m", "pytest"], report)[3] == f"--junitxml={report}"
    mine = ["pytest", "--junitxml=mine.xml"]
    assert with_junit_report(mine, report) == mine
    assert with_junit_report(["make"], report) == ["make"]


def run_pytest(workdir: Path, report: Path) -> str:
    argv = with_junit_report([sys.executable, "-m", "pytest", "-p", "no:cacheprovider"], report)
    done = subprocess.run(argv, cwd=workdir, capture_output=True, text=True, check=False)
    assert done.returncode == 1, done.stdout + done.stderr
    return done.stdout


def test_the_buggy_example_fails_one_test_by_both_readings(
    buggy_repo: Path, tmp_path: Path
) -> None:
    report = tmp_path / "junit.xml"
    output = run_pytest(buggy_repo, report)

    junit = read_results(report, output)
    text = read_results(None, output)

    assert junit.source == "junit"
    assert junit.failed == 1
    assert junit.failing_tests == [FAILING]
    assert junit.passed >= 1
    assert (junit.passed, junit.failed, junit.errors, junit.skipped, junit.failing_tests) == (
        text.passed, text.failed, text.errors, text.skipped, text.failing_tests,
    )  # fmt: skip


def test_every_outcome_is_counted(tmp_path: Path) -> None:
    (tmp_path / "test_mixed.py").write_text(MIXED)
    report = tmp_path / "junit.xml"
    output = run_pytest(tmp_path, report)

    junit = read_results(report, output)
    text = from_output(output)

    expected_failing = [
        "test_mixed.py::TestGroup::test_param[2]",
        "test_mixed.py::test_bad",
        "test_mixed.py::test_error",
    ]
    assert (junit.passed, junit.failed, junit.errors, junit.skipped) == (2, 2, 1, 1)
    assert junit.failing_tests == expected_failing
    assert (text.passed, text.failed, text.errors, text.skipped) == (2, 2, 1, 1)
    assert text.failing_tests == expected_failing
    payload = TestRunPayload.model_validate(junit.payload(["pytest"], 1234))
    assert payload.failed == 2
    assert payload.failing_tests == expected_failing


def test_a_half_written_report_falls_back_to_the_output(tmp_path: Path) -> None:
    report = tmp_path / "junit.xml"
    report.write_text("<testsuites><testsuite")
    output = "FAILED tests/a.py::test_x - assert 0\n===== 1 failed, 3 passed in 0.20s =====\n"
    results = read_results(report, output)
    assert results.source == "output"
    assert (results.passed, results.failed, results.failing_tests) == (3, 1, ["tests/a.py::test_x"])


def test_coloured_output_and_collection_errors() -> None:
    output = (
        "\x1b[31mERROR\x1b[0m tests/test_broken.py\n"
        "\x1b[31m=== \x1b[31m\x1b[1m1 error\x1b[0m\x1b[31m in 0.05s\x1b[0m\x1b[31m ===\x1b[0m\n"
    )
    results = from_output(output)
    assert (results.errors, results.failing_tests) == (1, ["tests/test_broken.py"])


def test_output_without_a_summary_counts_nothing() -> None:
    results = from_output("ImportError while loading conftest\n")
    assert (results.passed, results.failed, results.errors, results.skipped) == (0, 0, 0, 0)


@pytest.mark.parametrize(
    ("code", "output", "outcome"),
    [
        (0, "3 passed in 0.1s", "passed"),
        (1, "1 failed, 2 passed", "failed"),
        (2, "!!! Interrupted: 1 error during collection !!!", "collection_error"),
        (2, "\x1b[31m!!! Interrupted: 3 errors during collection !!!\x1b[0m", "collection_error"),
        (2, "KeyboardInterrupt", "interrupted"),
        (3, "INTERNALERROR>", "internal_error"),
        (4, "ERROR: file or directory not found: tests/x.py", "usage_error"),
        (5, "no tests ran in 0.01s", "no_tests_collected"),
        (-9, "", "killed"),
        (77, "", "other"),
    ],
)
def test_the_outcome_names_pytests_exit_status(code: int, output: str, outcome: str) -> None:
    assert pytest_outcome(code, output) == outcome
