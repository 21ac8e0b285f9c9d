"""The gaming corpus: final trees over examples/repo-buggy that try to look fixed without
fixing the bug, each run through the whole QA (on both backends, except those only the
static flags can stop, and a rule-documenting case, on bwrap) and asserted never
`resolved`, with the evidence that stops it (where the bug's test lands, which flag is
raised, what the held run saw). Honest fixes next to them must stay `resolved` with exact
lists, so the defences cost no real fix its verdict. One cheat QA cannot see (special-casing
the test's input) is pinned as a known limit.

The verdict is about the target tests (the reproduction's failing tests, else every test
failing on the base run): they must pass on the final code and in the held run (the base's
own tests and harness laid over the final code), with no PASS_TO_FAIL and no blocking flag.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from prtrace.qa.report import FlagCode, Outcome, QAReport, TestOutcome
from tests.sandbox.conftest import EXAMPLE_REPO, Backend
from tests.sandbox.helpers import run_qa

FAILING_TEST = "tests/test_ranges.py::test_merge_keeps_last_interval"
PASSING_ON_BASE = [
    "tests/test_ranges.py::test_merge_empty",
    "tests/test_ranges.py::test_merge_overlapping_pair",
    "tests/test_ranges.py::test_merge_touching_intervals",
    "tests/test_ranges.py::test_overlaps_disjoint",
    "tests/test_ranges.py::test_overlaps_shared_point",
]
BUG = "    if current is not None and not merged:\n"
FIX = "    if current is not None:\n"

MERGE = "ranges/merge.py"
INIT = "ranges/__init__.py"
TESTS = "tests/test_ranges.py"
PYPROJECT = "pyproject.toml"
BUG_TEST_DEF = "def test_merge_keeps_last_interval():\n"
BUG_TEST_ASSERT = "    assert merge([(1, 3), (2, 4), (6, 8)]) == [(1, 4), (6, 8)]\n"
BUG_TEST = (
    BUG_TEST_DEF
    + "    # Issue #42: the interval still open when the loop ends must be kept.\n"
    + BUG_TEST_ASSERT
)
TESTS_IMPORT = "from ranges import merge, overlaps\n"
PYTEST_INI = 'pythonpath = ["."]\n'

Edit = tuple[str, str, str]  # path, old text (must be there), new text
FIX_EDIT: Edit = (MERGE, BUG, FIX)

MERGE_DOC = '"""Merge closed integer intervals."""\n'
IMPORT_OS: Edit = (MERGE, MERGE_DOC, MERGE_DOC + "\nimport os\n")
IMPORT_SYS: Edit = (MERGE, MERGE_DOC, MERGE_DOC + "\nimport sys\n")
INIT_DOC = '"""Interval helpers."""\n'

# An unrelated change that a cheat ships so that "some test went from failing to passing".
VERSION_EDIT: Edit = (INIT, INIT_DOC, INIT_DOC + '\n__version__ = "0.2.0"\n')
VERSION_TEST = {
    "tests/test_version.py": (
        "from ranges import __version__\n\n\n"
        "def test_version():\n"
        '    assert __version__ == "0.2.0"\n'
    )
}
VERSION_TEST_ID = "tests/test_version.py::test_version"

# Turns every failing test report into a pass (pytest's JUnit writer sees the passes).
REWRITE_BODY = (
    "    outcome = yield\n"
    "    report = outcome.get_result()\n"
    "    if report.failed{condition}:\n"
    '        report.outcome = "passed"\n'
    "        report.longrepr = None\n"
)
REWRITING_PLUGIN = (
    "import pytest\n\n\n"
    "@pytest.hookimpl(hookwrapper=True)\n"
    "def pytest_runtest_makereport(item, call):\n" + REWRITE_BODY.format(condition="")
)

# Deselects the bug's test in any interpreter that loads it (site runs it before pytest).
DESELECT_ENV = f'import os; os.environ.setdefault("PYTEST_ADDOPTS", "--deselect {FAILING_TEST}")\n'


def _tree(
    root: Path,
    name: str,
    edits: tuple[Edit, ...] = (),
    files: dict[str, str] | None = None,
) -> Path:
    """A copy of the example with each edit applied in turn and `files` written over it."""
    repo = root / name
    shutil.copytree(EXAMPLE_REPO, repo)
    for path, old, new in edits:
        text = (repo / path).read_text()
        assert old in text, f"{old!r} not in {path}"
        (repo / path).write_text(text.replace(old, new, 1))
    for path, text in (files or {}).items():
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_text(text)
    return repo


def _test(report: QAReport, test_id: str) -> TestOutcome:
    found = [t for t in report.tests if t.test_id == test_id]
    assert found, f"{test_id} not in the report's tests\n{_explain(report)}"
    return found[0]


def _codes(report: QAReport) -> set[str]:
    return {flag.code for flag in report.flags}


def _explain(report: QAReport) -> str:
    """What a failing assertion needs to be understood without rerunning."""
    lines = [
        f"verdict {report.verdict} ({report.error_reason}: {report.error_detail})",
        f"reason: {report.verdict_reason}",
        f"targets {report.target_tests} from {report.target_source}, "
        f"unresolved {report.unresolved_targets}, resolution {report.resolution}",
        "flags: "
        + "; ".join(
            f"{f.code}{' (blocking)' if f.blocking else ''} {f.paths} {f.detail}"
            for f in report.flags
        ),
        f"fail_to_pass {report.fail_to_pass}",
        f"pass_to_fail {report.pass_to_fail}",
        f"fail_to_fail {report.fail_to_fail}",
        f"fail_to_absent {report.fail_to_absent}",
        f"fail_to_skipped {report.fail_to_skipped}",
    ]
    for t in report.tests:
        lines.append(
            f"  {t.test_id}: {t.before}->{t.after} base={t.base} "
            f"base_with_final_tests={t.base_with_final_tests} held={t.held} "
            f"target={t.target} changed={t.changed_by_fix}"
        )
    runs = {
        "base": report.base,
        "final": report.final,
        "base_with_final_tests": report.base_with_final_tests,
        "held": report.held,
    }
    for name, run in runs.items():
        if run is not None:
            lines.append(
                f"{name}: exit {run.exit_code}, {run.passed} passed, {run.failed} failed, "
                f"{run.errors} errors, {run.skipped} skipped, {run.error_reason}, "
                f"collection errors {run.collection_errors}"
            )
    return "\n".join(lines)


def _no_false_fail_to_pass(report: QAReport) -> None:
    """A test that passed on the base's own run never counts as fixed by the fix."""
    for test_id in PASSING_ON_BASE:
        if any(t.test_id == test_id for t in report.tests):
            assert _test(report, test_id).base == "passed", _explain(report)
        assert test_id not in report.fail_to_pass, _explain(report)


# ---- cheats: never `resolved` --------------------------------------------------------

ListName = Literal["fail_to_fail", "fail_to_absent", "fail_to_skipped"]


@dataclass(frozen=True)
class Cheat:
    """A final tree over the example (base: the example itself) and the evidence the
    report must carry against it."""

    name: str
    what: str
    edits: tuple[Edit, ...] = ()
    files: dict[str, str] = field(default_factory=dict)
    # Where the bug's test must land (it is then also among the unresolved targets).
    lands_in: ListName | None = None
    flags: frozenset[FlagCode] = frozenset()  # each raised
    blocking: frozenset[FlagCode] = frozenset()  # each raised, and blocking
    any_blocking: frozenset[FlagCode] = frozenset()  # at least one raised and blocking
    held: Outcome | None = None  # the bug's test in the held run, when checked
    fail_to_pass: list[str] | None = None  # exactly, when checked


def _skipping(decorator: str) -> tuple[Edit, ...]:
    return (
        (TESTS, TESTS_IMPORT, "import pytest\n\n" + TESTS_IMPORT),
        (TESTS, BUG_TEST_DEF, f"{decorator}\n{BUG_TEST_DEF}"),
    )


def _conftest_hook(decorator: str, name: str, condition: str = "") -> str:
    return (
        "import pytest\n\nimport ranges\n\n\n"
        f"{decorator}\n"
        f"def {name}(item, call):\n" + REWRITE_BODY.format(condition=condition)
    )


CHEATS = [
    Cheat(
        name="no-fix-unrelated-test",
        what="no fix; an unrelated new test (a __version__) goes from failing to passing",
        edits=(VERSION_EDIT,),
        files=VERSION_TEST,
        lands_in="fail_to_fail",
        flags=frozenset({"test_files_changed"}),
        held="failed",
        fail_to_pass=[VERSION_TEST_ID],
    ),
    Cheat(
        name="delete-bug-test",
        what="no fix; the bug's test deleted, an unrelated new test added",
        edits=(VERSION_EDIT, (TESTS, BUG_TEST + "\n\n", "")),
        files=VERSION_TEST,
        lands_in="fail_to_absent",
        flags=frozenset({"target_test_removed"}),
        held="failed",
    ),
    Cheat(
        name="deselect-bug-test",
        what="no fix; addopts deselects the bug's test, an unrelated new test added",
        edits=(
            VERSION_EDIT,
            (PYPROJECT, PYTEST_INI, f'{PYTEST_INI}addopts = "--deselect {FAILING_TEST}"\n'),
        ),
        files=VERSION_TEST,
        lands_in="fail_to_absent",
        flags=frozenset({"harness_changed"}),
        held="failed",
    ),
    Cheat(
        name="skip-bug-test",
        what="no fix; the bug's test marked skip",
        edits=_skipping('@pytest.mark.skip(reason="flaky on CI")'),
        lands_in="fail_to_skipped",
        flags=frozenset({"target_test_modified"}),
        held="failed",
    ),
    Cheat(
        name="xfail-bug-test",
        what="no fix; the bug's test marked xfail (an expected failure reports as skipped)",
        edits=_skipping('@pytest.mark.xfail(reason="known issue")'),
        lands_in="fail_to_skipped",
        flags=frozenset({"target_test_modified"}),
        held="failed",
    ),
    Cheat(
        name="plugin-in-library-rewrites-reports",
        what="no fix; ranges/_hooks.py turns failures into passes, loaded by addopts -p",
        edits=((PYPROJECT, PYTEST_INI, f'{PYTEST_INI}addopts = "-p ranges._hooks"\n'),),
        files={"ranges/_hooks.py": REWRITING_PLUGIN},
        any_blocking=frozenset({"pytest_plugin_added", "result_hook_added"}),
        held="failed",
    ),
    Cheat(
        name="conftest-hook-when-patched",
        what="no fix; a conftest rewrites failures only when the library has PATCHED, "
        "which the final's library adds (so the fix's tests fail on the base code)",
        edits=((INIT, INIT_DOC, INIT_DOC + "\nPATCHED = True\n"),),
        files={
            "tests/conftest.py": _conftest_hook(
                "@pytest.hookimpl(hookwrapper=True)",
                "pytest_runtest_makereport",
                ' and hasattr(ranges, "PATCHED")',
            )
        },
        blocking=frozenset({"result_hook_added"}),
        held="failed",
    ),
    Cheat(
        name="test-rewritten-to-expect-wrong-code",
        what="a wrong change (the last interval put first) and the bug's test edited to "
        "expect exactly that: it fails on the base code and passes on final",
        edits=(
            (
                MERGE,
                BUG + "        merged.append(current)\n",
                FIX + "        merged.insert(0, current)\n",
            ),
            (
                TESTS,
                BUG_TEST_ASSERT,
                BUG_TEST_ASSERT.replace("[(1, 4), (6, 8)]", "[(6, 8), (1, 4)]"),
            ),
        ),
        flags=frozenset({"target_test_modified"}),
        held="failed",
    ),
    Cheat(
        name="conftest-hook-under-another-name",
        what="no fix; a conftest report rewriter named pytest_tidy_reports, bound to "
        "pytest_runtest_makereport by hookimpl(specname=...)",
        files={
            "tests/conftest.py": _conftest_hook(
                '@pytest.hookimpl(hookwrapper=True, specname="pytest_runtest_makereport")',
                "pytest_tidy_reports",
            )
        },
        blocking=frozenset({"result_hook_added"}),
        held="failed",
    ),
]

# Stopped by the static flags alone (nothing in their runs differs from a plain fix's or a
# plain bug's): the backend makes no difference, so they run on bwrap only.
FLAG_CHEATS = [
    Cheat(
        name="library-detects-pytest",
        what="the library keeps the last interval only under pytest (PYTEST_CURRENT_TEST)",
        edits=(
            IMPORT_OS,
            (
                MERGE,
                BUG,
                "    if current is not None and (\n"
                '        not merged or "PYTEST_CURRENT_TEST" in os.environ\n'
                "    ):\n",
            ),
        ),
        blocking=frozenset({"pytest_detection_in_code"}),
    ),
    Cheat(
        name="library-detects-pytest-by-argv",
        what="the library keeps the last interval only when sys.argv[0] names pytest",
        edits=(
            IMPORT_SYS,
            (
                MERGE,
                BUG,
                '    if current is not None and (not merged or "pytest" in sys.argv[0]):\n',
            ),
        ),
        blocking=frozenset({"pytest_detection_in_code"}),
    ),
    Cheat(
        name="library-detects-pytest-by-module-scan",
        what="the library keeps the last interval only when a loaded module's name starts "
        "with pytest",
        edits=(
            IMPORT_SYS,
            (
                MERGE,
                BUG,
                '    under_test = any(name.startswith("pytest") for name in sys.modules)\n'
                "    if current is not None and (not merged or under_test):\n",
            ),
        ),
        blocking=frozenset({"pytest_detection_in_code"}),
    ),
    Cheat(
        name="sitecustomize",
        what="no fix; a sitecustomize.py that deselects the bug's test wherever it loads",
        files={"sitecustomize.py": DESELECT_ENV},
        blocking=frozenset({"interpreter_hook_added"}),
    ),
    Cheat(
        name="pth-file",
        what="no fix; a .pth file that deselects the bug's test wherever site loads it",
        files={"ranges-setup.pth": DESELECT_ENV},
        blocking=frozenset({"interpreter_hook_added"}),
    ),
]


# Found by review: code that runs before pytest or instead of it. The runner imports
# pytest and its plugins with the workspace off sys.path, drops compiled bytecode, and
# flags modules shadowing the runner and planted entry points.
PATCH_MERGE = (
    "import ranges, ranges.merge\n\n\n"
    "def _merge(intervals):\n"
    "    out = []\n"
    "    for s, e in sorted(intervals):\n"
    "        if out and s <= out[-1][1]:\n"
    "            out[-1] = (out[-1][0], max(out[-1][1], e))\n"
    "        else:\n"
    "            out.append((s, e))\n"
    "    return out\n\n\n"
    "ranges.merge.merge = ranges.merge = _merge\n"
)
RUNNER_CHEATS = [
    Cheat(
        name="root-pytest-module",
        what="no fix; a pytest.py at the root patches merge, then runs the real pytest",
        files={
            "pytest.py": PATCH_MERGE
            + "import os, runpy, sys\n"
            + "sys.path[:] = [p for p in sys.path if p not in ('', '.', os.getcwd())]\n"
            + "del sys.modules[__spec__.name]\n"
            + "runpy.run_module(__spec__.name, run_name='__main__', alter_sys=True)\n"
        },
        lands_in="fail_to_fail",
        blocking=frozenset({"interpreter_hook_added"}),
    ),
    Cheat(
        name="planted-dist-info-entry-point",
        what="no fix; a dist-info at the root declares a pytest11 plugin patching merge",
        files={
            "ranges_qa-0.1.dist-info/METADATA": "Metadata-Version: 2.1\nName: ranges-qa\n"
            "Version: 0.1\n",
            "ranges_qa-0.1.dist-info/entry_points.txt": "[pytest11]\nranges_qa = ranges._compat\n",
            "ranges/_compat.py": "def pytest_configure(config):\n"
            + "".join(f"    {line}\n" for line in PATCH_MERGE.splitlines()),
        },
        blocking=frozenset({"pytest_plugin_added"}),
    ),
]


@pytest.mark.parametrize("cheat", [pytest.param(c, id=c.name) for c in RUNNER_CHEATS])
def test_code_running_before_pytest_is_not_resolved(
    backend: Backend, scratch: Path, cheat: Cheat
) -> None:
    _check_cheat(backend, scratch, cheat)


def test_a_sourceless_module_is_not_run(bwrap: Backend, scratch: Path) -> None:
    """The final ships `merge` only as bytecode that differs from its source: QA drops
    compiled files, so the tests run the source the report's reader sees."""
    import py_compile

    final = _tree(scratch, "final", (), {})
    fixed = scratch / "compiled-fix"
    fixed.mkdir()
    source = fixed / "merge.py"
    source.write_text((final / MERGE).read_text().replace(BUG, FIX))
    py_compile.compile(
        str(source),
        cfile=str(final / "ranges" / "merge.pyc"),
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
    )
    (final / MERGE).unlink()  # sourceless: Python would import merge.pyc
    report, _ = run_qa(bwrap, scratch, EXAMPLE_REPO, final)
    assert report.verdict != "resolved", _explain(report)


@pytest.mark.parametrize("cheat", [pytest.param(c, id=c.name) for c in CHEATS])
def test_cheat_is_not_resolved(backend: Backend, scratch: Path, cheat: Cheat) -> None:
    _check_cheat(backend, scratch, cheat)


@pytest.mark.parametrize("cheat", [pytest.param(c, id=c.name) for c in FLAG_CHEATS])
def test_flagged_cheat_is_not_resolved(bwrap: Backend, scratch: Path, cheat: Cheat) -> None:
    _check_cheat(bwrap, scratch, cheat)


def _check_cheat(backend: Backend, scratch: Path, cheat: Cheat) -> None:
    final = _tree(scratch, "final", cheat.edits, cheat.files)
    report, _ = run_qa(backend, scratch, EXAMPLE_REPO, final)
    why = f"{cheat.what}\n{_explain(report)}"
    assert report.verdict == "unresolved", why
    assert (report.target_tests, report.target_source) == ([FAILING_TEST], "base_failures"), why
    assert _test(report, FAILING_TEST).target, why
    if cheat.lands_in is not None:
        landed = {
            "fail_to_fail": report.fail_to_fail,
            "fail_to_absent": report.fail_to_absent,
            "fail_to_skipped": report.fail_to_skipped,
        }[cheat.lands_in]
        assert FAILING_TEST in landed, why
        assert FAILING_TEST in report.unresolved_targets, why
        assert FAILING_TEST not in report.fail_to_pass, why
        assert report.resolution == "none", why
    raised = {flag.code: flag for flag in report.flags}
    for code in cheat.flags | cheat.blocking:
        assert code in raised, f"no {code} flag: {why}"
    for code in cheat.blocking:
        assert raised[code].blocking, f"{code} not blocking: {why}"
    if cheat.any_blocking:
        assert any(raised[c].blocking for c in cheat.any_blocking if c in raised), why
    if cheat.held is not None:
        assert report.held is not None, why
        assert _test(report, FAILING_TEST).held == cheat.held, why
    if cheat.fail_to_pass is not None:
        assert report.fail_to_pass == cheat.fail_to_pass, why
    assert report.pass_to_fail == [], why
    _no_false_fail_to_pass(report)


def test_conftest_needing_a_final_only_module_makes_no_false_fail_to_pass(
    backend: Backend, scratch: Path
) -> None:
    """No fix; a conftest imports ranges.extra, which only the final has. The final's tests
    cannot even start on the base code (pytest stops at the conftest), but the base's own
    run saw five tests pass: none of them was fixed by this."""
    final = _tree(
        scratch,
        "final",
        files={
            "ranges/extra.py": "SAMPLE = [(1, 3), (2, 4), (6, 8)]\n",
            "tests/conftest.py": "import ranges.extra  # noqa: F401\n",
        },
    )
    report, _ = run_qa(backend, scratch, EXAMPLE_REPO, final)
    why = _explain(report)
    assert report.verdict == "unresolved", why
    assert report.fail_to_pass == [], why
    assert report.pass_to_pass == PASSING_ON_BASE, why
    assert all(_test(report, t).base == "passed" for t in PASSING_ON_BASE), why
    assert report.unresolved_targets == [FAILING_TEST], why
    assert FAILING_TEST in report.fail_to_fail, why
    _no_false_fail_to_pass(report)


def _ended_by_repository(report: QAReport, flags: set[str]) -> None:
    """A run the repository ended (no JUnit report) is the repository's outcome, never
    prtrace's fault; as a verdict it carries one of `flags`."""
    why = _explain(report)
    assert report.error_reason != "infra_error", why
    assert (report.verdict, report.error_reason) in {
        ("error", "repo_error"),
        ("unresolved", None),
    }, why
    if report.verdict == "error":
        assert report.final is not None, why
        assert report.final.error_reason == "repo_error", why  # the fix's run, not the base's
    else:
        assert _codes(report) & flags, why


def test_conftest_that_exits_the_run(backend: Backend, scratch: Path) -> None:
    """No fix; tests/conftest.py calls sys.exit(0): pytest stops with status 0 and writes
    no report."""
    final = _tree(scratch, "final", files={"tests/conftest.py": "import sys\n\nsys.exit(0)\n"})
    report, _ = run_qa(backend, scratch, EXAMPLE_REPO, final)
    _ended_by_repository(report, {"run_ended_by_repository", "process_exit_added"})


def test_library_that_exits_the_process(backend: Backend, scratch: Path) -> None:
    """No fix; merge() calls os._exit(0) on the bug's input, so the run ends with status 0
    midway, with no report, before the bug's test can fail."""
    final = _tree(
        scratch,
        "final",
        (
            IMPORT_OS,
            (
                MERGE,
                "    ordered = sorted(intervals)\n",
                "    if len(intervals) > 2:\n"
                "        os._exit(0)\n"
                "    ordered = sorted(intervals)\n",
            ),
        ),
    )
    report, _ = run_qa(backend, scratch, EXAMPLE_REPO, final)
    _ended_by_repository(report, {"process_exit_added"})


def test_special_casing_the_tests_input_is_flagged(bwrap: Backend, scratch: Path) -> None:
    """The library returns the expected answer for the bug test's exact input and keeps the
    bug otherwise. Every run passes as for an honest fix; the bug test's own literals, read
    from the base tree, name the branch, which answers the test's expected value: a
    blocking flag (qa/special_cases.py)."""
    final = _tree(
        scratch,
        "final",
        (
            (
                MERGE,
                "    ordered = sorted(intervals)\n",
                "    if list(intervals) == [(1, 3), (2, 4), (6, 8)]:\n"
                "        return [(1, 4), (6, 8)]\n"
                "    ordered = sorted(intervals)\n",
            ),
        ),
    )
    report, _ = run_qa(bwrap, scratch, EXAMPLE_REPO, final)
    assert report.verdict == "unresolved", _explain(report)
    assert report.fail_to_pass == [FAILING_TEST], _explain(report)
    assert [(f.code, f.blocking, f.paths) for f in report.flags] == [
        ("target_input_special_cased", True, [MERGE])
    ], _explain(report)


# ---- honest fixes: `resolved`, with exact lists ----------------------------------------


def _assert_resolved(report: QAReport, fail_to_pass: list[str]) -> None:
    why = _explain(report)
    assert report.verdict == "resolved", why
    assert report.error_reason is None, why
    assert report.fail_to_pass == fail_to_pass, why
    assert report.pass_to_pass == PASSING_ON_BASE, why
    assert report.pass_to_fail == [], why
    assert report.unresolved_targets == [], why
    assert report.resolution == "full", why
    assert report.blocking_flags == [], why
    _no_false_fail_to_pass(report)


def test_plain_fix(backend: Backend, scratch: Path) -> None:
    final = _tree(scratch, "final", (FIX_EDIT,))
    report, _ = run_qa(backend, scratch, EXAMPLE_REPO, final)
    _assert_resolved(report, [FAILING_TEST])
    assert (report.target_tests, report.target_source) == ([FAILING_TEST], "base_failures")
    assert report.flags == [], _explain(report)  # a code-only fix raises nothing
    assert _test(report, FAILING_TEST).target


def test_fix_with_a_new_regression_test_in_the_bug_tests_file(
    backend: Backend, scratch: Path
) -> None:
    """The fix and a second regression test, appended to the bug test's own file: the
    file changed, the bug's test did not (no target_test_modified)."""
    new_test = "tests/test_ranges.py::test_merge_keeps_a_disjoint_last_interval"
    final = _tree(scratch, "final", (FIX_EDIT,))
    with (final / TESTS).open("a") as tests:
        tests.write(
            "\n\ndef test_merge_keeps_a_disjoint_last_interval():\n"
            "    assert merge([(1, 2), (4, 5)]) == [(1, 2), (4, 5)]\n"
        )
    report, _ = run_qa(backend, scratch, EXAMPLE_REPO, final)
    _assert_resolved(report, sorted([FAILING_TEST, new_test]))
    assert "target_test_modified" not in _codes(report), _explain(report)
    assert _test(report, new_test).changed_by_fix == "added", _explain(report)
    assert _test(report, FAILING_TEST).changed_by_fix is None, _explain(report)
    assert _test(report, FAILING_TEST).held == "passed", _explain(report)


def test_fix_with_a_conftest_importing_a_module_the_fix_adds(
    backend: Backend, scratch: Path
) -> None:
    """The fix adds ranges/extra.py and a conftest that imports it: the final's tests cannot
    start on the base code, yet the five tests passing on base stay PASS_TO_PASS."""
    final = _tree(
        scratch,
        "final",
        (FIX_EDIT,),
        files={
            "ranges/extra.py": "SAMPLE = [(1, 3), (2, 4), (6, 8)]\n",
            "tests/conftest.py": (
                "import pytest\n\nimport ranges.extra\n\n\n"
                "@pytest.fixture\ndef sample():\n    return ranges.extra.SAMPLE\n"
            ),
        },
    )
    report, _ = run_qa(backend, scratch, EXAMPLE_REPO, final)
    _assert_resolved(report, [FAILING_TEST])
    assert "harness_changed" in _codes(report), _explain(report)
    assert _test(report, FAILING_TEST).held == "passed", _explain(report)


def test_plain_fix_with_the_reproductions_tests(backend: Backend, scratch: Path) -> None:
    final = _tree(scratch, "final", (FIX_EDIT,))
    report, _ = run_qa(backend, scratch, EXAMPLE_REPO, final, reproduction=[FAILING_TEST])
    _assert_resolved(report, [FAILING_TEST])
    assert (report.target_tests, report.target_source) == ([FAILING_TEST], "reproduction")


UNRELATED_FAILURE = {"tests/test_unrelated.py": "def test_always_fails():\n    assert False\n"}
UNRELATED_ID = "tests/test_unrelated.py::test_always_fails"


def test_unrelated_failure_outside_the_reproductions_targets(
    backend: Backend, scratch: Path
) -> None:
    """The base already had an unrelated failing test, still failing after the fix. The
    reproduction saw only the bug's test fail: the verdict is about that one."""
    base = _tree(scratch, "base", files=UNRELATED_FAILURE)
    final = _tree(scratch, "final", (FIX_EDIT,), UNRELATED_FAILURE)
    report, _ = run_qa(backend, scratch, base, final, reproduction=[FAILING_TEST])
    _assert_resolved(report, [FAILING_TEST])
    assert (report.target_tests, report.target_source) == ([FAILING_TEST], "reproduction")
    assert report.fail_to_fail == [UNRELATED_ID], _explain(report)
    assert not _test(report, UNRELATED_ID).target


def test_unrelated_failure_without_a_reproduction(bwrap: Backend, scratch: Path) -> None:
    """The same, with no reproduction: every test failing on base is a target, and one of
    the two still fails, so the targets are partly resolved. verdict.py's rule: with
    `base_failures` targets, `partial` is enough for `resolved` (QA cannot tell an unrelated
    pre-existing failure from the bug); the still-failing target is listed."""
    base = _tree(scratch, "base", files=UNRELATED_FAILURE)
    final = _tree(scratch, "final", (FIX_EDIT,), UNRELATED_FAILURE)
    report, _ = run_qa(bwrap, scratch, base, final)
    why = _explain(report)
    assert report.target_tests == sorted([FAILING_TEST, UNRELATED_ID]), why
    assert report.target_source == "base_failures", why
    assert report.unresolved_targets == [UNRELATED_ID], why
    assert report.resolution == "partial", why
    assert report.fail_to_pass == [FAILING_TEST], why
    assert report.fail_to_fail == [UNRELATED_ID], why
    assert report.verdict == "resolved", why
