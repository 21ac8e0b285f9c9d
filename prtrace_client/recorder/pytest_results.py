"""Test results of a recorded pytest run, for `test_run` events.

When the recorder can, it adds `--junitxml` to the command and reads the report (the same
JUnit reader QA uses, so test ids are pytest node ids in both places). Otherwise, or when
pytest died before writing the report, the terminal output is read: the final summary line
(`1 failed, 2 passed, 1 skipped in 0.12s`) for the counts, and the short test summary
(`FAILED tests/x.py::test_y - …`, `ERROR tests/x.py`) for the failing ids.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Final

from prtrace.qa.junit import parse_junit
from prtrace.schema import MAX_LIST_ITEMS, MAX_TEST_ID_LEN

FRAMEWORK: Final = "pytest"
_RUNNERS: Final = frozenset({"uv", "poetry", "pipenv", "hatch", "pdm", "rye"})
_SUMMARY_LINE: Final = re.compile(
    r"^=+ (?P<body>(?:\d+ [a-z]+(?:, )?)+)(?: in [0-9.]+s.*)? =+\s*$", re.MULTILINE
)
_SUMMARY_COUNT: Final = re.compile(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed)")
_SHORT_SUMMARY_ID: Final = re.compile(r"^(?:FAILED|ERROR) (?P<id>\S+)", re.MULTILINE)
_ANSI: Final = re.compile(r"\x1b\[[0-9;]*m")


@dataclass
class TestResults:
    __test__ = False  # not a pytest test class

    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    failing_tests: list[str] = field(default_factory=list)
    source: str = "output"  # "junit" or "output"

    def payload(
        self, command: list[str], duration_ms: int, exit_code: int | None = None, output: str = ""
    ) -> dict[str, object]:
        status: dict[str, object] = {}
        if exit_code is not None:
            status = {
                "exit_code": max(-255, min(255, exit_code)),
                "outcome": pytest_outcome(exit_code, output),
            }
        return status | {
            "framework": FRAMEWORK,
            "command": command,
            "passed": self.passed,
            "failed": self.failed,
            "errors": self.errors,
            "skipped": self.skipped,
            "failing_tests": [t[:MAX_TEST_ID_LEN] for t in self.failing_tests[:MAX_LIST_ITEMS]],
            "duration_ms": duration_ms,
        }


def pytest_position(argv: list[str]) -> int | None:
    """Index of the argument after which pytest's own options start, or None when the
    command does not run pytest (`pytest …`, `python -m pytest …`, `uv run pytest …`)."""
    index = 0
    if argv and PurePath(argv[0]).name in _RUNNERS and len(argv) > 1 and argv[1] == "run":
        index = 2
        while index < len(argv) and argv[index].startswith("-"):
            index += 1  # runner options such as `uv run --frozen`
    if index >= len(argv):
        return None
    name = PurePath(argv[index]).name
    if name in {"pytest", "py.test"} or re.fullmatch(r"pytest-?[0-9.]*", name):
        return index + 1
    if re.fullmatch(r"python[0-9.]*", name) and argv[index + 1 : index + 3] == ["-m", "pytest"]:
        return index + 3
    return None


def is_pytest(argv: list[str]) -> bool:
    return pytest_position(argv) is not None


def with_junit_report(argv: list[str], report: Path) -> list[str]:
    """argv with pytest writing a JUnit report to `report` (node ids from the `file`
    attribute, hence xunit1); unchanged when the user asked for a report already."""
    position = pytest_position(argv)
    if position is None or any(a == "--junitxml" or a.startswith("--junit") for a in argv):
        return argv
    extra = [f"--junitxml={report}", "-o", "junit_family=xunit1"]
    return [*argv[:position], *extra, *argv[position:]]


def requested_report(argv: list[str]) -> str | None:
    """The report path the user asked pytest for (`--junitxml=PATH`, `--junit-xml PATH`)."""
    for index, arg in enumerate(argv):
        for option in ("--junitxml", "--junit-xml"):
            if arg.startswith(option + "="):
                return arg.split("=", 1)[1]
            if arg == option and index + 1 < len(argv):
                return argv[index + 1]
    return None


def from_junit(xml: bytes) -> TestResults:
    parsed = parse_junit(xml)
    failing = sorted(t for t, o in parsed.outcomes.items() if o in ("failed", "error"))
    return TestResults(
        passed=parsed.count("passed"),
        failed=parsed.count("failed"),
        errors=parsed.count("error"),
        skipped=parsed.count("skipped"),
        failing_tests=failing,
        source="junit",
    )


def from_output(output: str) -> TestResults:
    """Counts from pytest's last summary line and ids from its short test summary."""
    text = _ANSI.sub("", output)
    results = TestResults()
    summaries = list(_SUMMARY_LINE.finditer(text))
    if summaries:
        for number, word in _SUMMARY_COUNT.findall(summaries[-1].group("body")):
            count = int(number)
            if word == "passed" or word == "xpassed":
                results.passed += count
            elif word == "failed":
                results.failed += count
            elif word.startswith("error"):
                results.errors += count
            else:  # skipped, xfailed: expected not to pass
                results.skipped += count
    seen: dict[str, None] = {}
    for match in _SHORT_SUMMARY_ID.finditer(text):
        seen.setdefault(match.group("id"))
    results.failing_tests = sorted(seen)
    return results


# pytest's exit statuses (pytest.ExitCode), by name in the schema's `outcome`.
_PYTEST_OUTCOMES: Final = {
    0: "passed",
    1: "failed",
    2: "interrupted",
    3: "internal_error",
    4: "usage_error",
    5: "no_tests_collected",
}
_COLLECTION_ERRORS: Final = re.compile(r"\b\d+ errors? during collection\b")


def pytest_outcome(exit_code: int, output: str) -> str:
    """How a pytest run ended: its exit status by name, and `collection_error` for the
    interruption pytest reports when a test module cannot be collected (status 2)."""
    if exit_code < 0:
        return "killed"
    outcome = _PYTEST_OUTCOMES.get(exit_code, "other")
    if outcome == "interrupted" and _COLLECTION_ERRORS.search(_ANSI.sub("", output)):
        return "collection_error"
    return outcome


def read_results(report: Path | bytes | None, output: str) -> TestResults:
    """The JUnit report (a file or its bytes) when there is a readable one, else the
    terminal output."""
    if isinstance(report, Path):
        report = report.read_bytes() if report.is_file() else None
    if report is not None:
        try:
            return from_junit(report)
        except ValueError:
            pass  # a half-written report (pytest was killed): the output still tells
    return from_output(output)
