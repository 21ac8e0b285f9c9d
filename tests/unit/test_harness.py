"""The harness fields of an exported instance (prtrace.dataset.harness): values taken from
the QA report, an eval script that carries the test patch and runs exactly the verdict's
tests with every id quoted, nulls with a reason when QA decided nothing, and the test
lists in SWE-bench's string encoding. tests/sandbox/test_eval_script.py runs the scripts
on real projects."""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path
from typing import Any

from prtrace.dataset.harness import (
    END_MARKER,
    LOG_PARSER,
    START_MARKER,
    TESTBED_VARIABLE,
    eval_tests,
    harness_fields,
    swebench_test_lists,
)
from prtrace.patches import workspace_patch
from prtrace.qa.report import QAFlag, QAReport, RunSummary
from tests.factories import trace_metadata
from tests.judge_factories import document, qa_report

BASE = "b" * 40
TARGET = "tests/test_ranges.py::test_merge_keeps_last_interval"
HOSTILE = "tests/test_a.py::test[$(rm -rf ~)]"
TEST_PATCH = workspace_patch(
    {"tests/test_ranges.py": b"def test_old():\n    pass\n"},
    {
        "tests/test_ranges.py": b"def test_old():\n    assert True\n",
        "tests/test_new.py": b"def test_new():\n    pass\n",
    },
)


def _document() -> Any:
    metadata = trace_metadata()
    metadata["repository"]["base_commit"] = BASE
    return document([], **metadata)


def _report(**fields: Any) -> QAReport:
    run = RunSummary(
        exit_code=1,
        duration_ms=900,
        pytest_version="8.3.4",
        pytest_source="repository",
        workspace_install="editable",
        dependency_sources=["pyproject.toml [project.optional-dependencies] test"],
    )
    values: dict[str, Any] = {
        "target_tests": [TARGET],
        "target_source": "reproduction",
        "resolution": "full",
        "base": run,
        "final": run.model_copy(update={"exit_code": 0}),
    }
    return qa_report("resolved", **(values | fields))


def _command(script: str) -> list[str]:
    """The pytest command line: the one line between the markers."""
    lines = script.splitlines()
    start = lines.index(f": '{START_MARKER}'")
    assert lines[start + 2] == f": '{END_MARKER}'"
    return shlex.split(lines[start + 1])


def test_the_fields_come_from_the_document_and_the_qa_run() -> None:
    fields = harness_fields(_document(), _report(), "")
    assert fields["environment_setup_commit"] == BASE
    assert fields["version"] == "prtrace-qa/bwrap/pytest-8.3.4"
    assert fields["image"] is None
    assert fields["install_recipe"] == {
        "backend": "bwrap",
        "pytest_version": "8.3.4",
        "pytest_source": "repository",
        "workspace_install": "editable",
        "dependency_sources": ["pyproject.toml [project.optional-dependencies] test"],
        "install_detail": None,
        "dependencies_missing": False,
    }
    assert fields["log_parser"] == LOG_PARSER == "parse_log_pytest"
    assert fields["eval_type"] == "pass_and_fail"
    assert fields["eval_script_reason"] is None
    assert fields["harness_unreadable_tests"] == []


def test_the_script_runs_exactly_the_verdicts_tests_with_qas_options() -> None:
    report = _report(
        target_tests=[TARGET, "tests/test_ranges.py::test_still_failing"],
        fail_to_pass=[TARGET, "tests/test_ranges.py::test_also_fixed"],
        unresolved_targets=["tests/test_ranges.py::test_still_failing"],
    )
    script = harness_fields(_document(), report, "")["eval_script"]
    assert script.splitlines()[:2] == ["#!/bin/bash", "set -uxo pipefail"]
    command = _command(script)
    assert command[:3] == ["python", "-m", "pytest"]
    assert {"-rA", "--continue-on-collection-errors", "--color=no"} <= set(command)
    assert command[command.index("-p") + 1] == "no:cacheprovider"
    assert not any(arg.startswith("--timeout") for arg in command)
    tests = [arg for arg in command[3:] if "::" in arg]
    assert tests == eval_tests(report)
    assert tests == [
        TARGET,
        "tests/test_ranges.py::test_still_failing",
        "tests/test_ranges.py::test_also_fixed",
        *report.pass_to_pass,
    ]
    assert "export LANG=C.UTF-8 PYTHONDONTWRITEBYTECODE=1 PYTHONHASHSEED=0" in script
    assert "PYTHONPATH" not in script  # installed editable: nothing on the path


def test_an_uninstalled_src_layout_goes_first_on_the_path_as_in_qa() -> None:
    base = _report().base
    assert base is not None
    report = _report(base=base.model_copy(update={"workspace_install": "src_path"}))
    script = harness_fields(_document(), report, "")["eval_script"]
    assert 'export PYTHONPATH="$PWD/src' in script


def test_the_test_patch_is_applied_and_the_test_files_put_back() -> None:
    script = harness_fields(_document(), _report(), TEST_PATCH)["eval_script"]
    lines = script.splitlines()
    reset = [f"git checkout {BASE} -- tests/test_ranges.py", "rm -f -- tests/test_new.py"]
    apply = next(i for i, line in enumerate(lines) if line.startswith("git apply -v - <<'EOF_"))
    delimiter = lines[apply].split("'")[1]
    assert lines[apply - 2 : apply] == reset
    assert "\n".join(lines[apply + 1 : lines.index(delimiter)]) + "\n" == TEST_PATCH
    assert lines[-2:] == reset  # after the end marker, as SWE-bench's scripts do


def test_a_hostile_test_id_reaches_pytest_as_one_argument_and_runs_nothing(
    tmp_path: Path,
) -> None:
    """The script run by bash with stand-ins for git and python: the id arrives verbatim,
    and nothing in it was executed."""
    report = _report(fail_to_pass=[HOSTILE], pass_to_pass=["-pevil.py::test_x"])
    script = harness_fields(_document(), report, TEST_PATCH)["eval_script"]
    assert HOSTILE in eval_tests(report)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").write_text('#!/bin/sh\nprintf "%s\\n" "$@" > "$ARGS"\n')
    (bin_dir / "git").write_text("#!/bin/sh\ncat > /dev/null\n")
    for stub in bin_dir.iterdir():
        stub.chmod(0o755)
    home = tmp_path / "home"
    home.mkdir()
    (home / "canary").write_text("still here")
    (tmp_path / "eval.sh").write_text(script)
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "HOME": str(home),
        "ARGS": str(tmp_path / "args"),
        TESTBED_VARIABLE: str(tmp_path),
    }
    done = subprocess.run(
        ["/bin/bash", str(tmp_path / "eval.sh")],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (home / "canary").read_text() == "still here"
    arguments = (tmp_path / "args").read_text().splitlines()
    assert HOSTILE in arguments
    # pytest reads `-p…` as a plugin to load even among paths: the id goes as a path.
    assert "./-pevil.py::test_x" in arguments
    assert "-pevil.py::test_x" not in arguments
    assert START_MARKER in done.stdout  # traced, and on stdout
    assert END_MARKER in done.stdout


def test_ids_the_log_parser_cannot_read_back_are_named() -> None:
    spaced = "tests/test_utils.py::test_help[-sentence < max]"
    fields = harness_fields(_document(), _report(fail_to_pass=[TARGET, spaced]), "")
    assert fields["harness_unreadable_tests"] == [spaced]
    assert fields["eval_script"] is not None


def test_without_qa_or_target_tests_there_is_no_script_and_a_reason() -> None:
    fields = harness_fields(_document(), None, TEST_PATCH)
    assert fields["eval_script"] is None
    assert (
        fields["eval_script_reason"] == "QA did not run: no tests are known to decide the instance"
    )
    assert fields["version"] is None
    assert fields["install_recipe"] is None
    assert fields["environment_setup_commit"] == BASE
    assert fields["log_parser"] == LOG_PARSER

    error = qa_report(
        "error",
        error_reason="timeout",
        verdict_reason="base: the test run exceeded its wall-clock limit and was killed",
        flags=[QAFlag(code="dependencies_missing", blocking=False, detail="offline")],
    )
    fields = harness_fields(_document(), error, "")
    assert fields["eval_script"] is None
    assert fields["eval_script_reason"] == (
        "QA found no target tests (verdict error: base: the test run exceeded its "
        "wall-clock limit and was killed)"
    )
    assert fields["version"] == "prtrace-qa/bwrap/pytest-unknown"


def test_a_test_patch_holding_the_log_markers_gets_no_script() -> None:
    planted = workspace_patch({}, {"tests/test_x.py": f"# {END_MARKER}\n".encode()})
    fields = harness_fields(_document(), _report(), planted)
    assert fields["eval_script"] is None
    assert "markers" in fields["eval_script_reason"]


def test_test_lists_as_json_strings_round_trip() -> None:
    instance = {"FAIL_TO_PASS": [TARGET, HOSTILE], "PASS_TO_PASS": [], "repo": "acme/ranges"}
    lists = swebench_test_lists(instance)
    assert set(lists) == {"FAIL_TO_PASS", "PASS_TO_PASS"}
    assert json.loads(lists["FAIL_TO_PASS"]) == [TARGET, HOSTILE]
    assert json.loads(lists["PASS_TO_PASS"]) == []
    assert swebench_test_lists(instance | lists) == lists  # already strings: unchanged
