"""QA use case: materialize both snapshots, prepare dependencies, run the tests on each in
the sandbox, compare per test, and return the report. Never raises for a QA failure: the
report says `error` with a reason instead."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Final, Literal

from prtrace.qa.archive import extract_archive
from prtrace.qa.dependencies import TestSetup, apply_build_outputs, prepare_dependencies
from prtrace.qa.errors import QAError
from prtrace.qa.junit import JUnitOutcomes, parse_junit
from prtrace.qa.overlay import build_held, build_overlay, changed_tests, stage_base_harness
from prtrace.qa.ports import ArtifactStore
from prtrace.qa.report import ErrorReason, Outcome, QAFlag, QAReport, RunSummary
from prtrace.qa.runner_site import build_runner_site, cache_root
from prtrace.qa.sandbox import Sandbox, SandboxResult, SandboxRun
from prtrace.qa.settings import QASettings
from prtrace.qa.shared_dirs import DEFAULT_WORK_DIR, private_subdir, shared_dir
from prtrace.qa.snapshots import fetch_snapshot
from prtrace.qa.special_cases import SpecialCaseScan
from prtrace.qa.tamper import StaticFindings, TestDefinitions, scan, tree_changes
from prtrace.qa.verdict import RunOutcomes, attribute_collection_errors, classify, drop_modules
from prtrace.schema import BlobRef
from prtrace.storage_keys import artifact_key

Side = Literal["base", "final"]
SIDES: Final[tuple[Side, Side]] = ("base", "final")
RunName = Literal["base", "final", "held", "base_with_final_tests"]
_JUNIT_MAX_BYTES: Final = 32 * 1024 * 1024


# A run that could not import or configure anything is evidence, not an error, when the
# final runs: on the base code its tests count as failing before; in the held run (the
# base's tests on the final code) they count as failing after.
_RESCUABLE: Final[frozenset[ErrorReason]] = frozenset({"collection_error", "repo_error"})
_EVIDENCE_RUNS: Final[frozenset[RunName]] = frozenset({"base", "held", "base_with_final_tests"})
_PYTEST_VERSION = re.compile(rb"\bpytest-(\d[\w.+-]*), ")
# Our own options, were pytest to refuse them, would be our fault, not the repository's.
_RUNNER_OPTIONS: Final = ("--timeout", "--junitxml", "junit_family", "--continue-on-collection")


# `python -c` in place of `python -m pytest`: it first leaves a mark in the output folder,
# so a run that ends without a report is known to have reached the repository's code (the
# repository's outcome) rather than failed to start (prtrace's or the sandbox's).
# pytest and what it imports come from the environment, never from the workspace: they are
# imported with the workspace off sys.path (a `pytest.py` or `_pytest/` at the root would
# otherwise replace them), which then goes back first, as `python -m pytest` puts it.
# Plugins are left to pytest (imported early, they could not be assertion-rewritten, and
# that warning fails repositories running with `-W error`); a module shadowing one is
# flagged (tamper.RUNNER_MODULES).
_BOOTSTRAP: Final = """
import sys
open(sys.argv.pop(1), "x").close()
here = sys.path.pop(0)
import pytest, _pytest.junitxml
sys.path.insert(0, here)
sys.argv[0] = "pytest"
sys.exit(pytest.console_main())
"""
STARTED_MARK: Final = "started"


@dataclass(frozen=True)
class SideRun:
    summary: RunSummary
    outcomes: dict[str, Outcome]
    flaky: frozenset[str]
    detail: str | None
    ended_by_repository: bool = False

    def outcomes_for(self, other_ids: set[str]) -> dict[str, Outcome]:
        """Per-test outcomes, a module that failed to import counting as an error of each
        test another run found in it; a run that ran nothing: every such test errored."""
        if self.summary.error_reason is not None:
            return dict.fromkeys(other_ids, "error")
        return attribute_collection_errors(self.outcomes, other_ids)


def _rescuable(name: RunName, reason: ErrorReason) -> bool:
    return name in _EVIDENCE_RUNS and reason in _RESCUABLE


def _stops_qa(name: RunName, reason: ErrorReason | None) -> bool:
    return reason is not None and not _rescuable(name, reason)


def _before_side_rescued(name: RunName, reason: ErrorReason, runs: dict[RunName, SideRun]) -> bool:
    final = runs.get("final")
    return _rescuable(name, reason) and final is not None and final.summary.error_reason is None


def _read_result_file(path: Path, max_bytes: int) -> bytes | None:
    """Written by sandboxed code: never follow a link it planted, never read unbounded."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_size > max_bytes:
            return None
        return handle.read(max_bytes)


_EXTENSION = re.compile(r"^(?P<module>[^.]+)(\.[\w-]+)?\.(so|pyd)$")


def compiled_modules(root: Path) -> list[str]:
    """Compiled extension modules in a workspace, as module paths without the ABI tag
    (`markupsafe/_speedups`), so both sides compare."""
    found: set[str] = set()
    for directory, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d != ".git" and not os.path.islink(Path(directory, d))]
        for name in files:
            match = _EXTENSION.match(name)
            if match:
                relative = Path(directory, match.group("module")).relative_to(root)
                found.add(relative.as_posix())
    return sorted(found)


def _environment_flags(setups: dict[Side, TestSetup], runs: dict[RunName, SideRun]) -> list[QAFlag]:
    """Base and final must be tested on the same kind of build: a difference is a flag
    that blocks `resolved`, never silently a verdict."""
    flags: list[QAFlag] = []
    base, final = runs.get("base"), runs.get("final")
    if base is not None and final is not None:
        differences = []
        b, f = base.summary, final.summary
        if b.workspace_install != f.workspace_install:
            differences.append(
                f"installed {b.workspace_install} on base, {f.workspace_install} on final"
            )
        only_base = sorted(set(b.compiled_modules) - set(f.compiled_modules))
        only_final = sorted(set(f.compiled_modules) - set(b.compiled_modules))
        if only_base:
            differences.append("compiled only on base: " + ", ".join(only_base))
        if only_final:
            differences.append("compiled only on final: " + ", ".join(only_final))
        if differences:
            flags.append(
                QAFlag(
                    code="environment_differs",
                    blocking=True,
                    detail="base and final were not tested on the same build: "
                    + "; ".join(differences),
                    paths=only_base + only_final,
                )
            )
    missing = [side for side, setup in sorted(setups.items()) if setup.dependencies_missing]
    if missing:
        flags.append(
            QAFlag(
                code="dependencies_missing",
                blocking=False,
                detail="the declared dependencies could not be installed on "
                + " and ".join(missing)
                + ": the tests ran with the runner's pytest, importing the code from the workspace",
                paths=[],
            )
        )
    return flags


def _drop_bytecode(root: Path) -> None:
    """Compiled bytecode is a cache of the sources, except when it was planted: an
    unchecked .pyc runs instead of the source QA reads. Tests run from the sources."""
    for directory, dirs, files in os.walk(root):
        for name in list(dirs):
            path = os.path.join(directory, name)
            if name == "__pycache__":
                os.unlink(path) if os.path.islink(path) else shutil.rmtree(path)
                dirs.remove(name)
        for name in files:
            if name.endswith((".pyc", ".pyo")):
                os.unlink(os.path.join(directory, name))


def _workspace_root(extracted: Path) -> Path:
    """A snapshot holding a single top-level directory (as `git archive --prefix` or GitHub
    tarballs make) is that directory's repository."""
    entries = list(extracted.iterdir())
    if len(entries) == 1 and entries[0].is_dir() and not entries[0].is_symlink():
        return entries[0]
    return extracted


def _is_tree_file(root: Path, relative: str) -> bool:
    """A regular file of the workspace, links not followed (the tree is the tests')."""
    if relative.startswith("/") or ".." in PurePosixPath(relative).parts:
        return False
    try:
        return stat.S_ISREG(os.lstat(root / relative).st_mode)
    except OSError:
        return False


def run_pytest(
    sandbox: Sandbox,
    settings: QASettings,
    owner: tuple[int, int],
    workspace: Path,
    output: Path,
    runner_site: Path,
    setup: TestSetup | None,
) -> tuple[SandboxResult, JUnitOutcomes | None, bytes | None]:
    """One pytest run in the sandbox: JUnit (xunit1, for node ids), per-test timeouts,
    collection errors do not stop the session."""
    setup = setup or TestSetup()
    private_subdir(output.parent, output.name, 0o755)
    if os.geteuid() == 0:
        os.chown(output, *owner)
    environment = setup.environment
    paths = sandbox.paths(workspace, runner_site, environment or runner_site, output)
    # With an environment, its interpreter finds its own packages first and the runner's
    # pytest last (a .pth file); without one, the runner's pytest is all there is.
    python = f"{paths.deps}/bin/python" if environment else paths.python
    python_path = [] if environment else [paths.runner_site]
    if setup.workspace_install != "editable" and (workspace / "src").is_dir():
        python_path.insert(0, f"{paths.workspace}/src")  # an uninstalled src layout
    argv = [
        python, "-c", _BOOTSTRAP, f"{paths.output}/{STARTED_MARK}",
        "-p", "no:cacheprovider",  # writes nothing but what the tests write
        "--continue-on-collection-errors",  # one broken module must not hide the others
        "-o", "junit_family=xunit1",  # xunit1 carries each test's file: exact node ids
        f"--junitxml={paths.output}/junit.xml",
        f"--timeout={settings.per_test_timeout_s}",  # a hung test fails, the report completes
        "--color=no", "-rfE",
        *setup.pytest_args,
    ]  # fmt: skip
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": "/tmp",  # noqa: S108 - the sandbox's private tmpfs
        "TMPDIR": "/tmp",  # noqa: S108
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
        "PYTHONHASHSEED": "0",
    }
    if python_path:
        env["PYTHONPATH"] = ":".join(python_path)
    result = sandbox.run(
        SandboxRun(
            argv=argv,
            workspace=workspace,
            output=output,
            runner_site=runner_site,
            deps=environment,
            env=env,
            limits=settings.limits,
        )
    )
    junit = _read_result_file(output / "junit.xml", _JUNIT_MAX_BYTES)
    parsed = None
    if junit is not None and not result.timed_out:
        try:
            parsed = parse_junit(junit, partial(_is_tree_file, workspace))
        except ValueError:
            parsed = None
    return result, parsed, junit


class QAService:
    def __init__(
        self,
        sandbox: Sandbox,
        artifacts: ArtifactStore,
        settings: QASettings,
        owner: tuple[int, int],
    ) -> None:
        self._sandbox = sandbox
        self._artifacts = artifacts
        self._settings = settings
        self._owner = owner  # who owns workspaces: the sandbox's host uid

    def run(
        self,
        tenant: str,
        trace_id: str,
        base: BlobRef,
        final: BlobRef,
        snapshot_keys: tuple[str, str] | None = None,
        reproduction: Sequence[str] = (),
    ) -> QAReport:
        """QA of the trace's two snapshots, read from their artifact keys under the trace
        (or from `snapshot_keys`, base then final, when the caller names them).
        `reproduction`: the test ids the trace saw failing before its fix (targets.py)."""
        start = time.monotonic()
        work = self._make_work_dir()
        try:
            keys: dict[Side, str | None] = {
                "base": snapshot_keys[0] if snapshot_keys else None,
                "final": snapshot_keys[1] if snapshot_keys else None,
            }
            return self._run(tenant, trace_id, base, final, keys, work, start, reproduction)
        except QAError as error:
            return self._error_report(trace_id, error.reason, error.detail, start)
        except Exception as error:  # storage, engine or host trouble: still a report
            detail = f"{type(error).__name__}: {error}"
            return self._error_report(trace_id, "infra_error", detail, start)
        finally:
            if not self._settings.keep_work_dir:
                shutil.rmtree(work, ignore_errors=True)

    # ---- steps --------------------------------------------------------------------

    def _run(
        self,
        tenant: str,
        trace_id: str,
        base: BlobRef,
        final: BlobRef,
        keys: dict[Side, str | None],
        work: Path,
        start: float,
        reproduction: Sequence[str],
    ) -> QAReport:
        self._sandbox.check_available()
        workspaces: dict[Side, Path] = {}
        refs: dict[Side, BlobRef] = {"base": base, "final": final}
        for side in SIDES:
            ref = refs[side]
            try:
                workspaces[side] = self._materialize(tenant, trace_id, ref, keys[side], work / side)
            except QAError as error:
                raise QAError(error.reason, f"{side} snapshot: {error.detail}") from None
        # Read before any test run can touch either tree.
        changes = tree_changes(workspaces["base"], workspaces["final"])
        findings = scan(workspaces["base"], workspaces["final"], changes)
        definitions = TestDefinitions.read(workspaces["base"], workspaces["final"], changes)
        special_cases = SpecialCaseScan.read(workspaces["base"], workspaces["final"], changes)
        overlay = self._base_with_final_tests(workspaces, work)
        staged = work / "held-harness"
        stage_base_harness(workspaces["base"], staged)
        runner_site = build_runner_site(self._settings.cache_dir)
        runs: dict[RunName, SideRun] = {}
        setups: dict[Side, TestSetup] = {}
        plan: list[tuple[RunName, Side]] = [("base", "base"), ("final", "final"), ("held", "final")]
        if overlay is not None:  # the base code's environment, the final's tests
            plan.append(("base_with_final_tests", "base"))
        held: Path | None = None
        for name, side in plan:
            if side not in setups:
                try:
                    setups[side] = self._prepare(workspaces[side], runner_site)
                except QAError as error:
                    raise QAError(error.reason, f"{side} environment: {error.detail}") from None
                # The same build on each side, wherever the environment was prepared.
                apply_build_outputs(setups[side], workspaces[side], self._owner)
                if side == "final":
                    # After preparation (which may build into the tree), before any run.
                    held = self._held(workspaces["final"], staged, work)
            if name == "held" and held is None:
                continue  # the final's tests and harness are the base's: nothing to hold
            workspace = {"held": held, "base_with_final_tests": overlay}.get(name)
            side_dir = workspace.parent if workspace is not None else work / side
            if workspace is not None:
                apply_build_outputs(setups[side], workspace, self._owner)
            runs[name] = self._test_side(
                tenant,
                trace_id,
                workspace or workspaces[side],
                side_dir,
                runner_site,
                setups[side],
            )
            if _stops_qa(name, runs[name].summary.error_reason):
                break  # e.g. base timed out: the verdict is decided, spend no more time
        summaries = {name: run.summary for name, run in runs.items()}
        flags = list(findings.flags) + self._run_flags(runs) + _environment_flags(setups, runs)
        for name, run in runs.items():
            reason = run.summary.error_reason
            if reason is not None and not _before_side_rescued(name, reason, runs):
                return self._error_report(
                    trace_id,
                    reason,
                    f"{name.replace('_', ' ')}: {run.detail}",
                    start,
                    summaries,
                    findings,
                    flags,
                )
        return self._compare(
            trace_id,
            runs,
            summaries,
            findings,
            flags,
            definitions,
            special_cases,
            reproduction,
            start,
        )

    def _compare(
        self,
        trace_id: str,
        runs: dict[RunName, SideRun],
        summaries: dict[RunName, RunSummary],
        findings: StaticFindings,
        flags: list[QAFlag],
        definitions: TestDefinitions,
        special_cases: SpecialCaseScan,
        reproduction: Sequence[str],
        start: float,
    ) -> QAReport:
        final_ids = set(runs["final"].outcomes)
        held_run, overlay_run = runs.get("held"), runs.get("base_with_final_tests")
        held_ids = set(held_run.outcomes) if held_run else set()
        base = runs["base"].outcomes_for(final_ids | held_ids)
        broken_modules = frozenset().union(
            *(run.summary.collection_errors for run in runs.values())
        )
        outcomes = RunOutcomes(
            base=drop_modules(base, broken_modules),
            final=drop_modules(runs["final"].outcomes, broken_modules),
            held=drop_modules(held_run.outcomes_for(set(base)), broken_modules)
            if held_run
            else None,
            base_with_final_tests=drop_modules(overlay_run.outcomes_for(final_ids), broken_modules)
            if overlay_run
            else None,
        )
        all_ids = outcomes.base.keys() | outcomes.final.keys()
        changed = definitions.changes(all_ids)
        decide = partial(
            classify,
            outcomes,
            flaky=frozenset().union(*(run.flaky for run in runs.values())),
            reproduction=reproduction,
            changes=changed,
        )
        result = decide(flags=flags)
        # Only the classification names the target tests whose inputs the code may answer.
        if (special := special_cases.flag(result.target_tests)) is not None:
            flags.append(special)
            if special.blocking:
                result = decide(flags=flags)
        for code, change in (
            ("target_test_modified", "modified"),
            ("target_test_removed", "removed"),
        ):
            touched = [t for t in result.target_tests if changed.get(t) == change]
            if touched:
                flags.append(
                    QAFlag(
                        code=code,
                        blocking=False,
                        detail=f"the fix {change} target tests; the held run decides with "
                        "the base's definition",
                        paths=touched,
                    )
                )
        return QAReport(
            trace_id=trace_id,
            verdict=result.verdict,
            verdict_reason=result.verdict_reason,
            backend=self._sandbox.name,
            fail_to_pass=result.fail_to_pass,
            pass_to_pass=result.pass_to_pass,
            pass_to_fail=result.pass_to_fail,
            fail_to_fail=result.fail_to_fail,
            fail_to_absent=result.fail_to_absent,
            fail_to_skipped=result.fail_to_skipped,
            target_tests=result.target_tests,
            target_source=result.target_source,
            unresolved_targets=result.unresolved_targets,
            resolution=result.resolution,
            flags=flags,
            changed_test_files=findings.changed_test_files,
            changed_harness_files=findings.changed_harness_files,
            tests=result.tests,
            base=summaries["base"],
            final=summaries["final"],
            held=summaries.get("held"),
            base_with_final_tests=summaries.get("base_with_final_tests"),
            duration_ms=int((time.monotonic() - start) * 1000),
        )

    @staticmethod
    def _run_flags(runs: dict[RunName, SideRun]) -> list[QAFlag]:
        """The fix's runs (final, held) that the repository's code ended without a report."""
        ended = [n for n in ("final", "held") if n in runs and runs[n].ended_by_repository]
        if not ended:
            return []
        return [
            QAFlag(
                code="run_ended_by_repository",
                blocking=True,
                detail="the repository's code ended the test process before pytest wrote its "
                "report: " + "; ".join(f"{n}: {runs[n].detail}" for n in ended),
                paths=[],
            )
        ]

    def _prepare(self, workspace: Path, runner_site: Path) -> TestSetup:
        if not self._settings.install_dependencies:
            return TestSetup()
        return prepare_dependencies(
            self._sandbox,
            workspace,
            cache_root(self._settings.cache_dir),
            self._owner,
            self._settings.prepare_limits,
            network=self._settings.dependency_network,
            runner_site=runner_site,
            index=self._settings.index(),
        )

    def _base_with_final_tests(self, workspaces: dict[Side, Path], work: Path) -> Path | None:
        changes = changed_tests(workspaces["base"], workspaces["final"])
        if not changes.any:
            return None
        root = private_subdir(work, "base_with_final_tests", 0o711)
        overlay = root / "workspace"
        build_overlay(workspaces["base"], changes, overlay)
        self._give_to_sandbox(overlay)
        return overlay

    def _held(self, final: Path, staged: Path, work: Path) -> Path | None:
        """The final tree with the base's tests and harness (overlay.build_held); None
        when they are the final's already."""
        root = private_subdir(work, "held", 0o711)
        held = root / "workspace"
        if not build_held(final, staged, held):
            shutil.rmtree(held, ignore_errors=True)
            return None
        self._give_to_sandbox(held)
        return held

    def _give_to_sandbox(self, tree: Path) -> None:
        if os.geteuid() == 0:
            for directory, dirs, files in os.walk(tree):
                os.lchown(directory, *self._owner)
                for name in dirs + files:
                    os.lchown(os.path.join(directory, name), *self._owner)

    def _make_work_dir(self) -> Path:
        base = self._settings.work_dir or DEFAULT_WORK_DIR
        shared_dir(base, 0o711)
        work = Path(tempfile.mkdtemp(dir=base, prefix="run-"))
        # The sandbox uid must traverse to its workspace but list nothing on the way.
        if base.stat().st_uid == os.geteuid():
            os.chmod(base, 0o711)  # noqa: S103 - traverse only
        os.chmod(work, 0o711)  # noqa: S103
        return work

    def _materialize(
        self, tenant: str, trace_id: str, ref: BlobRef, key: str | None, side_dir: Path
    ) -> Path:
        private_subdir(side_dir.parent, side_dir.name, 0o711)
        archive = fetch_snapshot(
            self._artifacts, tenant, trace_id, ref, side_dir / "snapshot", key=key
        )
        extracted = private_subdir(side_dir, "workspace", 0o755)
        if os.geteuid() == 0:
            os.chown(extracted, *self._owner)
        extract_archive(
            archive, ref.media_type, extracted, self._settings.archive_limits, self._owner
        )
        archive.unlink()
        _drop_bytecode(extracted)
        return _workspace_root(extracted)

    def _test_side(
        self,
        tenant: str,
        trace_id: str,
        workspace: Path,
        side_dir: Path,
        runner_site: Path,
        setup: TestSetup,
    ) -> SideRun:
        first: tuple[SandboxResult, JUnitOutcomes | None, bytes | None] | None = None
        flaky: set[str] = set()
        for attempt in range(1 + self._settings.reruns):
            result, parsed, junit = run_pytest(
                self._sandbox,
                self._settings,
                self._owner,
                workspace,
                side_dir / f"out-{attempt}",
                runner_site,
                setup,
            )
            if first is None:
                first = (result, parsed, junit)
                if parsed is None:
                    break  # a run that produced no report is not rerun
            elif parsed is not None and first[1] is not None:
                for test_id, outcome in first[1].outcomes.items():
                    if parsed.outcomes.get(test_id, "absent") != outcome:
                        flaky.add(test_id)
        assert first is not None
        result, parsed, junit = first
        started = os.path.lexists(side_dir / "out-0" / STARTED_MARK)
        reason, detail = self._run_error(result, parsed, started)
        log = b"== stdout ==\n" + result.stdout + b"\n== stderr ==\n" + result.stderr
        version = _PYTEST_VERSION.search(result.stdout[:4096])
        summary = RunSummary(
            compiled_modules=compiled_modules(workspace),
            exit_code=result.exit_code,
            duration_ms=result.duration_ms,
            passed=parsed.count("passed") if parsed else 0,
            failed=parsed.count("failed") if parsed else 0,
            errors=parsed.count("error") if parsed else 0,
            skipped=parsed.count("skipped") if parsed else 0,
            timed_out=result.timed_out,
            error_reason=reason,
            collection_errors=parsed.collection_errors if parsed else [],
            pytest_version=version.group(1).decode() if version else None,
            pytest_source=setup.pytest_source,
            workspace_install=setup.workspace_install,
            install_detail=setup.install_detail,
            dependency_sources=setup.sources,
            log_key=self._keep(tenant, trace_id, log, "text/plain; charset=utf-8"),
            junit_key=self._keep(tenant, trace_id, junit, "application/xml") if junit else None,
        )
        return SideRun(
            summary=summary,
            outcomes=parsed.outcomes if parsed else {},
            flaky=frozenset(flaky),
            detail=detail,
            ended_by_repository=started and parsed is None and reason == "repo_error",
        )

    @staticmethod
    def _run_error(
        result: SandboxResult, parsed: JUnitOutcomes | None, started: bool
    ) -> tuple[ErrorReason | None, str | None]:
        if result.timed_out:
            return "timeout", "the test run exceeded its wall-clock limit and was killed"
        stderr = result.stderr.decode(errors="replace")
        tail = " | ".join(
            (stderr.strip() or result.stdout.decode(errors="replace").strip()).splitlines()[-3:]
        )
        if result.exit_code in (3, 4):
            # Internal or usage error: raised by the repository's configuration, conftest or
            # plugins (our own options are known good), unless pytest refused one of ours.
            if any(option in stderr for option in _RUNNER_OPTIONS):
                return "infra_error", f"pytest refused the runner's options: {tail}"
            kind = "internal" if result.exit_code == 3 else "usage"
            return "repo_error", f"pytest {kind} error (exit {result.exit_code}): {tail}"
        if parsed is None:
            if result.oom_killed:
                return "oom", "the test run was killed at its memory limit"
            if started:  # sys.exit in a conftest, os._exit in library code, a crash
                return "repo_error", (
                    f"the repository's code ended the test process (exit {result.exit_code}) "
                    f"before pytest wrote its report: {tail}"
                )
            return (
                "infra_error",
                f"the test process did not start (exit {result.exit_code}): {tail}",
            )
        if len(parsed.outcomes) == len(parsed.collection_errors):
            if parsed.collection_errors:
                return "collection_error", "no test could be collected: " + ", ".join(
                    parsed.collection_errors[:5]
                )
            return "collection_error", "no tests collected"
        return None, None

    def _keep(self, tenant: str, trace_id: str, body: bytes, content_type: str) -> str:
        digest = hashlib.sha256(body).hexdigest()
        key = artifact_key(tenant, trace_id, digest)
        self._artifacts.put_if_absent(key, body, digest, content_type)
        return key

    def _error_report(
        self,
        trace_id: str,
        reason: ErrorReason,
        detail: str,
        start: float,
        summaries: dict[RunName, RunSummary] | None = None,
        findings: StaticFindings | None = None,
        flags: list[QAFlag] | None = None,
    ) -> QAReport:
        summaries = summaries or {}
        return QAReport(
            trace_id=trace_id,
            verdict="error",
            error_reason=reason,
            error_detail=detail,
            verdict_reason=detail,
            backend=self._sandbox.name,
            flags=flags or [],
            changed_test_files=findings.changed_test_files if findings else [],
            changed_harness_files=findings.changed_harness_files if findings else [],
            base=summaries.get("base"),
            final=summaries.get("final"),
            held=summaries.get("held"),
            base_with_final_tests=summaries.get("base_with_final_tests"),
            duration_ms=int((time.monotonic() - start) * 1000),
        )
