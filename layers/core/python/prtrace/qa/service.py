"""QA use case: materialize both snapshots, prepare dependencies, run the tests on each in
the sandbox, compare per test, and return the report. Never raises for a QA failure: the
report says `error` with a reason instead."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from prtrace.qa.archive import extract_archive
from prtrace.qa.dependencies import prepare_dependencies
from prtrace.qa.errors import QAError
from prtrace.qa.junit import JUnitOutcomes, parse_junit
from prtrace.qa.overlay import build_overlay, changed_tests
from prtrace.qa.ports import ArtifactStore
from prtrace.qa.report import ErrorReason, Outcome, QAReport, RunSummary
from prtrace.qa.runner_site import build_runner_site, cache_root
from prtrace.qa.sandbox import Sandbox, SandboxResult, SandboxRun
from prtrace.qa.settings import QASettings
from prtrace.qa.shared_dirs import private_subdir, shared_dir
from prtrace.qa.snapshots import fetch_snapshot
from prtrace.qa.verdict import attribute_collection_errors, classify
from prtrace.schema import BlobRef
from prtrace.storage_keys import artifact_key

Side = Literal["base", "final"]
SIDES: Final[tuple[Side, Side]] = ("base", "final")
RunName = Literal["base", "final", "base_with_final_tests"]
_JUNIT_MAX_BYTES: Final = 32 * 1024 * 1024


@dataclass(frozen=True)
class SideRun:
    summary: RunSummary
    outcomes: dict[str, Outcome]
    flaky: frozenset[str]
    detail: str | None


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


def _workspace_root(extracted: Path) -> Path:
    """A snapshot holding a single top-level directory (as `git archive --prefix` or GitHub
    tarballs make) is that directory's repository."""
    entries = list(extracted.iterdir())
    if len(entries) == 1 and entries[0].is_dir() and not entries[0].is_symlink():
        return entries[0]
    return extracted


def run_pytest(
    sandbox: Sandbox,
    settings: QASettings,
    owner: tuple[int, int],
    workspace: Path,
    output: Path,
    runner_site: Path,
    deps: Path | None,
) -> tuple[SandboxResult, JUnitOutcomes | None, bytes | None]:
    """One pytest run in the sandbox: JUnit (xunit1, for node ids), per-test timeouts,
    collection errors do not stop the session."""
    private_subdir(output.parent, output.name, 0o755)
    if os.geteuid() == 0:
        os.chown(output, *owner)
    paths = sandbox.paths(workspace, runner_site, deps or runner_site, output)
    python_path = paths.runner_site + (f":{paths.deps}" if deps else "")
    argv = [
        paths.python, "-m", "pytest",
        "-p", "no:cacheprovider",  # writes nothing but what the tests write
        "--continue-on-collection-errors",  # one broken module must not hide the others
        "-o", "junit_family=xunit1",  # xunit1 carries each test's file: exact node ids
        f"--junitxml={paths.output}/junit.xml",
        f"--timeout={settings.per_test_timeout_s}",  # a hung test fails, the report completes
        "--color=no", "-rfE",
    ]  # fmt: skip
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": "/tmp",  # noqa: S108 - the sandbox's private tmpfs
        "TMPDIR": "/tmp",  # noqa: S108
        "LANG": "C.UTF-8",
        "PYTHONPATH": python_path,
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
        "PYTHONHASHSEED": "0",
    }
    result = sandbox.run(
        SandboxRun(
            argv=argv,
            workspace=workspace,
            output=output,
            runner_site=runner_site,
            deps=deps,
            env=env,
            limits=settings.limits,
        )
    )
    junit = _read_result_file(output / "junit.xml", _JUNIT_MAX_BYTES)
    parsed = None
    if junit is not None and not result.timed_out:
        try:
            parsed = parse_junit(junit)
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
    ) -> QAReport:
        """QA of the trace's two snapshots, read from their artifact keys under the trace
        (or from `snapshot_keys`, base then final, when the caller names them)."""
        start = time.monotonic()
        work = self._make_work_dir()
        try:
            keys: dict[Side, str | None] = {
                "base": snapshot_keys[0] if snapshot_keys else None,
                "final": snapshot_keys[1] if snapshot_keys else None,
            }
            return self._run(tenant, trace_id, base, final, keys, work, start)
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
        # Copied before any test run can touch the base tree.
        overlay = self._base_with_final_tests(workspaces, work)
        runner_site = build_runner_site()
        runs: dict[RunName, SideRun] = {}
        deps: dict[Side, Path | None] = {}
        for side in SIDES:
            deps[side] = None
            if self._settings.install_dependencies:
                deps[side] = prepare_dependencies(
                    self._sandbox,
                    workspaces[side],
                    cache_root(),
                    self._owner,
                    self._settings.prepare_limits,
                    network=self._settings.dependency_network,
                )
            runs[side] = self._test_side(
                tenant, trace_id, workspaces[side], work / side, runner_site, deps[side]
            )
        if overlay is not None:  # the base code's dependencies, the final's tests
            runs["base_with_final_tests"] = self._test_side(
                tenant, trace_id, overlay, overlay.parent, runner_site, deps["base"]
            )
        summaries = {name: run.summary for name, run in runs.items()}
        for name, run in runs.items():
            if run.summary.error_reason is not None:
                return self._error_report(
                    trace_id,
                    run.summary.error_reason,
                    f"{name.replace('_', ' ')}: {run.detail}",
                    start,
                    summaries,
                )
        before = dict(runs["base"].outcomes)
        if overlay is not None:  # the final's tests on the base code decide "before"
            before.update(runs["base_with_final_tests"].outcomes)
        after = runs["final"].outcomes
        result = classify(
            attribute_collection_errors(before, after.keys()),
            after,
            flaky=frozenset().union(*(run.flaky for run in runs.values())),
        )
        return QAReport(
            trace_id=trace_id,
            verdict=result.verdict,
            backend=self._sandbox.name,
            fail_to_pass=result.fail_to_pass,
            pass_to_pass=result.pass_to_pass,
            pass_to_fail=result.pass_to_fail,
            fail_to_fail=result.fail_to_fail,
            tests=result.tests,
            base=summaries["base"],
            final=summaries["final"],
            base_with_final_tests=summaries.get("base_with_final_tests"),
            duration_ms=int((time.monotonic() - start) * 1000),
        )

    def _base_with_final_tests(self, workspaces: dict[Side, Path], work: Path) -> Path | None:
        changes = changed_tests(workspaces["base"], workspaces["final"])
        if not changes.any:
            return None
        root = private_subdir(work, "base_with_final_tests", 0o711)
        overlay = root / "workspace"
        build_overlay(workspaces["base"], changes, overlay)
        if os.geteuid() == 0:
            for directory, dirs, files in os.walk(overlay):
                os.lchown(directory, *self._owner)
                for name in dirs + files:
                    os.lchown(os.path.join(directory, name), *self._owner)
        return overlay

    def _make_work_dir(self) -> Path:
        base = self._settings.work_dir or Path("/var/tmp/prtrace-qa")  # noqa: S108
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
        return _workspace_root(extracted)

    def _test_side(
        self,
        tenant: str,
        trace_id: str,
        workspace: Path,
        side_dir: Path,
        runner_site: Path,
        deps: Path | None,
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
                deps,
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
        reason, detail = self._run_error(result, parsed)
        log = b"== stdout ==\n" + result.stdout + b"\n== stderr ==\n" + result.stderr
        summary = RunSummary(
            exit_code=result.exit_code,
            duration_ms=result.duration_ms,
            passed=parsed.count("passed") if parsed else 0,
            failed=parsed.count("failed") if parsed else 0,
            errors=parsed.count("error") if parsed else 0,
            skipped=parsed.count("skipped") if parsed else 0,
            timed_out=result.timed_out,
            error_reason=reason,
            log_key=self._keep(tenant, trace_id, log, "text/plain; charset=utf-8"),
            junit_key=self._keep(tenant, trace_id, junit, "application/xml") if junit else None,
        )
        return SideRun(
            summary=summary,
            outcomes=parsed.outcomes if parsed else {},
            flaky=frozenset(flaky),
            detail=detail,
        )

    @staticmethod
    def _run_error(
        result: SandboxResult, parsed: JUnitOutcomes | None
    ) -> tuple[ErrorReason | None, str | None]:
        if result.timed_out:
            return "timeout", "the test run exceeded its wall-clock limit and was killed"
        if parsed is None:
            if result.oom_killed:
                return "oom", "the test run was killed at its memory limit"
            tail = result.stderr.decode(errors="replace").strip().splitlines()[-3:]
            return (
                "infra_error",
                f"pytest exited {result.exit_code} without a report: " + " | ".join(tail),
            )
        if result.exit_code in (3, 4):
            return "infra_error", f"pytest internal or usage error (exit {result.exit_code})"
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
    ) -> QAReport:
        summaries = summaries or {}
        return QAReport(
            trace_id=trace_id,
            verdict="error",
            error_reason=reason,
            error_detail=detail,
            backend=self._sandbox.name,
            base=summaries.get("base"),
            final=summaries.get("final"),
            base_with_final_tests=summaries.get("base_with_final_tests"),
            duration_ms=int((time.monotonic() - start) * 1000),
        )
