"""QA sandbox benchmark: what the sandbox costs and how long QA of the example takes.

  qa_sandbox_start_<backend>_ms   median of `true` in a fresh sandbox (cgroup or container
                                  created and removed each time)
  qa_bare_run_ms                  the example's pytest run with no sandbox at all (median)
  qa_sandboxed_run_bwrap_ms       the same pytest run inside bwrap (median)
  qa_example_total_<backend>_s    the whole QA of examples/repo-buggy against its fix:
                                  store, verify and extract both snapshots, run the tests
                                  on each in the sandbox, compare (target < 10 s on bwrap)
Docker keys are left out when no engine answers. Needs root and .ci/sandbox-setup.sh.
`python -m bench.qa` prints a table.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from rich.console import Console
from rich.table import Table

from prtrace.adapters.artifacts import DirectoryArtifactStore
from prtrace.adapters.sandbox.select import build_sandbox
from prtrace.qa.errors import BackendUnavailable
from prtrace.qa.local_inputs import store_local_snapshot
from prtrace.qa.runner_site import build_runner_site
from prtrace.qa.sandbox import Sandbox, SandboxRun
from prtrace.qa.service import QAService, run_pytest
from prtrace.qa.settings import BackendName, QASettings

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "repo-buggy"
WORK = Path("/var/tmp/prtrace-qa-bench")  # noqa: S108 - reachable by the sandbox uid
ROUNDS = 7
TARGET_TOTAL_S = 10.0


def _median_ms(fn: Callable[[], object], rounds: int) -> float:
    fn()  # warm: page cache, runner site, image layers
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return round(statistics.median(samples) * 1000, 1)


def _scratch(name: str, owner: tuple[int, int]) -> Path:
    WORK.mkdir(parents=True, exist_ok=True)
    WORK.chmod(0o711)
    path = Path(tempfile.mkdtemp(dir=WORK, prefix=f"{name}-"))
    path.chmod(0o755)
    shutil.chown(path, *owner)
    return path


def _available(name: BackendName) -> tuple[Sandbox, tuple[int, int]] | None:
    sandbox, owner = build_sandbox(QASettings(backend=name))
    try:
        sandbox.check_available()
    except BackendUnavailable:
        return None
    return sandbox, owner


def _fixed_example(root: Path) -> Path:
    fixed = root / "fixed"
    shutil.copytree(EXAMPLE, fixed)
    merge = fixed / "ranges" / "merge.py"
    merge.write_text(
        merge.read_text().replace(
            "    if current is not None and not merged:\n", "    if current is not None:\n"
        )
    )
    return fixed


def _example_total_s(name: BackendName, sandbox: Sandbox, owner: tuple[int, int]) -> float:
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        fixed = _fixed_example(root)
        settings = QASettings(backend=name, work_dir=WORK / "work")
        start = time.perf_counter()
        store = DirectoryArtifactStore(root / "artifacts")
        base = store_local_snapshot(EXAMPLE, store, "bench", "tr_bench")
        final = store_local_snapshot(fixed, store, "bench", "tr_bench")
        report = QAService(sandbox, store, settings, owner).run("bench", "tr_bench", base, final)
        elapsed = time.perf_counter() - start
    if report.verdict != "resolved":
        raise RuntimeError(f"example QA on {name}: {report.verdict} {report.error_detail}")
    return round(elapsed, 3)


def run(rounds: int = ROUNDS) -> dict[str, float]:
    results: dict[str, float] = {}
    runner_site = build_runner_site(QASettings().cache_dir)
    backends: dict[BackendName, tuple[Sandbox, tuple[int, int]]] = {}
    for name in ("bwrap", "docker"):
        found = _available(name)
        if found is not None:
            backends[name] = found
    if "bwrap" not in backends:
        raise RuntimeError("the bwrap backend is unavailable: run .ci/sandbox-setup.sh as root")
    for name, (sandbox, owner) in backends.items():
        scratch = _scratch(f"start-{name}", owner)
        start_run = SandboxRun(argv=["/usr/bin/true"], workspace=scratch, output=scratch)
        try:
            results[f"qa_sandbox_start_{name}_ms"] = _median_ms(
                partial(sandbox.run, start_run), rounds
            )
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    # The same interpreter, pytest and flags as in the sandbox, minus the sandbox.
    bare_argv = [
        "/usr/bin/python3", "-m", "pytest", "-q", "-p", "no:cacheprovider",
        "-o", "junit_family=xunit1", "--junitxml=/dev/null", "--timeout=120",
    ]  # fmt: skip
    results["qa_bare_run_ms"] = _median_ms(
        lambda: subprocess.run(  # noqa: S603
            bare_argv,
            cwd=EXAMPLE,
            env={
                "PATH": "/usr/bin:/bin",
                "PYTHONPATH": str(runner_site),
                "PYTHONDONTWRITEBYTECODE": "1",
                "HOME": "/tmp",  # noqa: S108
            },
            capture_output=True,
            check=False,
        ),
        rounds,
    )
    bwrap, owner = backends["bwrap"]
    settings = QASettings(backend="bwrap")
    workspace = _scratch("workspace", owner)
    shutil.copytree(EXAMPLE, workspace, dirs_exist_ok=True)
    for path in [workspace, *workspace.rglob("*")]:
        shutil.chown(path, *owner)
    outputs = _scratch("outputs", owner)

    def sandboxed() -> None:
        out = outputs / f"out-{time.perf_counter_ns()}"
        run_pytest(bwrap, settings, owner, workspace, out, runner_site, None)

    try:
        results["qa_sandboxed_run_bwrap_ms"] = _median_ms(sandboxed, rounds)
    finally:
        shutil.rmtree(workspace, ignore_errors=True)
        shutil.rmtree(outputs, ignore_errors=True)
    for name, (sandbox, owner) in backends.items():
        _example_total_s(name, sandbox, owner)  # warm
        results[f"qa_example_total_{name}_s"] = statistics.median(
            _example_total_s(name, sandbox, owner) for _ in range(min(rounds, 3))
        )
    results["qa_example_total_target_s"] = TARGET_TOTAL_S
    return results


def main() -> None:
    results = run()
    table = Table("measure", "value")
    for key, value in results.items():
        table.add_row(key, f"{value:,.3f}" if key.endswith("_s") else f"{value:,.1f}")
    console = Console()
    console.print(table)
    total = results["qa_example_total_bwrap_s"]
    verdict = "within" if total < TARGET_TOTAL_S else "OVER"
    console.print(f"example QA on bwrap: {total:.2f} s, {verdict} the {TARGET_TOTAL_S:g} s target")


if __name__ == "__main__":
    main()
