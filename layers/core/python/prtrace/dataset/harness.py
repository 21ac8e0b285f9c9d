"""The fields SWE-bench's harness reads to run an exported instance (docs/harness.md),
filled from what prtrace's QA did.

The harness (swebench 5.x, `make_test_spec`) reads `image`, `version`, `log_parser`,
`eval_type`, `eval_script` and FAIL_TO_PASS / PASS_TO_PASS from each instance. It starts
`image`, applies the prediction's patch in /testbed (base_commit's tree), runs
`eval_script` and grades the tests between its start and end markers with `log_parser`.

`eval_script` runs the tests QA's verdict used (the target tests, FAIL_TO_PASS and
PASS_TO_PASS, each once) with the pytest options and variables of QA's run that can change
an outcome. prtrace keeps no container image (QA prepares each environment in its sandbox
for the run), so `image` is null and `install_recipe` says how QA's environment was made.

Pure: no I/O, no clock; the same document, report and test patch give the same fields.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from collections.abc import Iterable, Mapping
from typing import Any, Final

from prtrace.assemble.document import TraceDocument
from prtrace.dataset.document_stream import TraceHeader
from prtrace.patches import file_diffs
from prtrace.qa.report import QAReport, RunSummary

# The harness's names (swebench.harness.constants, log_parsers.PARSER_REGISTRY).
LOG_PARSER: Final = "parse_log_pytest"
EVAL_TYPE: Final = "pass_and_fail"
START_MARKER: Final = ">>>>> Start Test Output"
END_MARKER: Final = ">>>>> End Test Output"
TESTBED: Final = "/testbed"
# Where the script runs when not in /testbed (prtrace's sandbox mounts the tree elsewhere).
TESTBED_VARIABLE: Final = "PRTRACE_TESTBED"
# QA's pytest options that decide outcomes, and -rA: one "PASSED <id>" line per test for
# the log parser. QA's --timeout (pytest-timeout) is left out: a harness image may not
# have the plugin, and pytest refuses an unknown option; the harness has its own timeout.
PYTEST_OPTIONS: Final = (
    "-rA",
    "-p",
    "no:cacheprovider",
    "--continue-on-collection-errors",
    "--color=no",
)
# QA's test-run variables that tests can see (service.run_pytest); HOME and TMPDIR are
# the sandbox's own and stay the image's.
QA_VARIABLES: Final = (
    ("LANG", "C.UTF-8"),
    ("PYTHONDONTWRITEBYTECODE", "1"),
    ("PYTHONHASHSEED", "0"),
    ("PYTHONNOUSERSITE", "1"),
)
# parse_log_pytest splits each line on whitespace: an id with a space cannot be read back.
_UNREADABLE: Final = re.compile(r"\s")


def harness_fields(
    document: TraceDocument | TraceHeader, report: QAReport | None, test_patch: str
) -> dict[str, Any]:
    """The harness's fields of one instance. `test_patch` is the instance's own (the script
    carries it: the harness copies only the prediction's patch into the container)."""
    base_commit = document.metadata.repository.base_commit
    run = _environment_run(report)
    tests = eval_tests(report) if report is not None else []
    reason = _no_script_reason(report, tests, test_patch)
    src_path = run is not None and run.workspace_install != "editable"
    return {
        "version": _version(report, run),
        "environment_setup_commit": base_commit,
        "image": None,
        "install_recipe": _install_recipe(report, run),
        "eval_script": None if reason else eval_script(base_commit, tests, test_patch, src_path),
        "eval_script_reason": reason,
        "log_parser": LOG_PARSER,
        "eval_type": EVAL_TYPE,
        "harness_unreadable_tests": [t for t in tests if _UNREADABLE.search(t)],
    }


def eval_tests(report: QAReport) -> list[str]:
    """The tests the script runs: the verdict's targets, then FAIL_TO_PASS and PASS_TO_PASS
    (the harness grades those two lists, so each must be in the log), each once."""
    return list(dict.fromkeys([*report.target_tests, *report.fail_to_pass, *report.pass_to_pass]))


def eval_script(base_commit: str, tests: Iterable[str], test_patch: str, src_path: bool) -> str:
    """The bash script SWE-bench's harness runs after applying the prediction: the test
    patch applied over the test files, the tests run between the markers, the test files
    put back. Its first two lines are the ones the harness strips and puts back."""
    existing, added = _test_files(test_patch)
    commit = shlex.quote(base_commit)
    reset = [
        *([f"git checkout {commit} -- {_words(existing)}"] if existing else []),
        *([f"rm -f -- {_words(added)}"] if added else []),
    ]
    lines = [
        "#!/bin/bash",
        "set -uxo pipefail",
        "exec 2>&1",  # the trace of the markers and pytest's output, in one ordered stream
        f'cd "${{{TESTBED_VARIABLE}:-{TESTBED}}}"',
        "export " + " ".join(f"{name}={value}" for name, value in QA_VARIABLES),
    ]
    if src_path:  # QA ran an uninstalled src/ layout with src/ first on the path
        lines.append(
            'if [ -d src ]; then export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"; fi'
        )
    lines += [f"git -c core.fileMode=false diff {commit}", *reset]
    if test_patch:
        body = test_patch if test_patch.endswith("\n") else test_patch + "\n"
        delimiter = _heredoc_delimiter(body)
        lines.append(
            f"git apply -v - <<'{delimiter}' || {{ echo '>>>>> Patch Apply Failed'; exit 1; }}"
        )
        lines.append(body + delimiter)
    command = ["python", "-m", "pytest", *PYTEST_OPTIONS, *map(_argument, tests)]
    lines += [f": '{START_MARKER}'", shlex.join(command), f": '{END_MARKER}'", *reset]
    return "\n".join(lines) + "\n"


def swebench_test_lists(instance: Mapping[str, Any]) -> dict[str, str]:
    """FAIL_TO_PASS and PASS_TO_PASS as SWE-bench publishes them: JSON strings of lists
    (the export's `--string-test-lists`); already strings stay as they are."""
    lists: dict[str, str] = {}
    for key in ("FAIL_TO_PASS", "PASS_TO_PASS"):
        value = instance.get(key, [])
        lists[key] = value if isinstance(value, str) else json.dumps(list(value))
    return lists


def _environment_run(report: QAReport | None) -> RunSummary | None:
    """The run whose environment the harness's stands for: the base's, built from
    environment_setup_commit (the final's when the base run is missing)."""
    if report is None:
        return None
    return report.base or report.final


def _version(report: QAReport | None, run: RunSummary | None) -> str | None:
    """Not a release of the repository (SWE-bench's spec tables key on those, and must not
    match this): the sandbox and pytest QA's environment had."""
    if report is None:
        return None
    pytest = run.pytest_version if run is not None and run.pytest_version else "unknown"
    return f"prtrace-qa/{report.backend}/pytest-{pytest}"


def _install_recipe(report: QAReport | None, run: RunSummary | None) -> dict[str, Any] | None:
    if report is None or run is None:
        return None
    return {
        "backend": report.backend,
        "pytest_version": run.pytest_version,
        "pytest_source": run.pytest_source,
        "workspace_install": run.workspace_install,
        "dependency_sources": list(run.dependency_sources),
        "install_detail": run.install_detail,
        "dependencies_missing": any(f.code == "dependencies_missing" for f in report.flags),
    }


def _no_script_reason(report: QAReport | None, tests: list[str], test_patch: str) -> str | None:
    if report is None:
        return "QA did not run: no tests are known to decide the instance"
    if not report.target_tests:
        why = f": {report.verdict_reason}" if report.verdict_reason else ""
        return f"QA found no target tests (verdict {report.verdict}{why})"
    if any(
        marker in text for marker in (START_MARKER, END_MARKER) for text in [test_patch, *tests]
    ):
        return "the test patch or a test id holds the harness's log markers"
    return None


def _test_files(test_patch: str) -> tuple[list[str], list[str]]:
    """(files the base has, files the patch adds) among those the test patch touches."""
    existing: list[str] = []
    added: list[str] = []
    for path, diff in file_diffs(test_patch):
        header = diff.split("\n@@", 1)[0].split("\n")
        is_new = any(line.startswith("new file mode ") for line in header)
        (added if is_new else existing).append(path)
    return existing, added


def _argument(test_id: str) -> str:
    """A test id as a pytest argument: one that pytest would read as an option (`-p…`
    loads a plugin even among paths) or an argument file (`@…`) is made a path."""
    return f"./{test_id}" if test_id.startswith(("-", "@")) else test_id


def _words(paths: list[str]) -> str:
    return " ".join(shlex.quote(path) for path in paths)


def _heredoc_delimiter(body: str) -> str:
    """A delimiter the body does not hold (SWE-bench's own rule)."""
    delimiter = f"EOF_{hashlib.blake2b(body.encode()).hexdigest()[:12]}"
    while delimiter in body:
        delimiter = f"EOF_{hashlib.blake2b((body + delimiter).encode()).hexdigest()[:12]}"
    return delimiter
