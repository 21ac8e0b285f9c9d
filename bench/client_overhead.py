"""Client overhead per recorded command: `prtrace run -- CMD` against running CMD directly,
in a git repository (a copy of the buggy example) with a recording session open.

  direct            `true` run directly (process start only)
  prtrace_run       `prtrace run -- true` (a new Python process: CLI start, edit scan, run,
                    journal the event in the SQLite outbox)
  prtrace_run_edit  the same with one file edited before each run (diff + file_edit event)
  recorder_inproc   Recorder.run(["true"]) inside one process (no interpreter start-up)
  cli_startup       `prtrace --help` (interpreter + CLI imports, for reference)
  pytest_direct / prtrace_run_pytest   the example's test suite, plain and recorded

Nothing touches the network: recording only journals; delivery happens at `record stop`.
"""

from __future__ import annotations

import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from prtrace_client.outbox import Outbox
from prtrace_client.recorder.session import Recorder

REPO_BUGGY = Path(__file__).resolve().parent.parent / "examples" / "repo-buggy"
ROUNDS = 15
PYTEST_ROUNDS = 5
CLI = [sys.executable, "-m", "prtrace_cli.main"]


def _samples(fn: Callable[[], object], rounds: int) -> list[float]:
    fn()  # warm the page cache and git's stat cache
    taken = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        taken.append((time.perf_counter() - start) * 1000)
    return taken


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)  # noqa: S603,S607


def _run(argv: list[str], repo: Path, env: dict[str, str]) -> None:
    subprocess.run(argv, cwd=repo, env=env, check=False, capture_output=True)  # noqa: S603


def run() -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="prtrace-bench-client-") as scratch:
        root = Path(scratch)
        repo = root / "repo"
        shutil.copytree(REPO_BUGGY, repo, ignore=shutil.ignore_patterns("__pycache__"))
        (repo / ".gitignore").write_text("__pycache__/\n.pytest_cache/\n")
        env = os.environ | {
            "HOME": str(root),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_AUTHOR_NAME": "bench",
            "GIT_AUTHOR_EMAIL": "bench@example.com",
            "GIT_COMMITTER_NAME": "bench",
            "GIT_COMMITTER_EMAIL": "bench@example.com",
            "PRTRACE_OUTBOX": str(root / "outbox.db"),
        }
        saved = dict(os.environ)
        os.environ.update(env)
        try:
            _git(repo, "init", "-q", "-b", "main")
            _git(repo, "add", "-A")
            _git(repo, "commit", "-q", "-m", "initial")
            return _measure(repo, root, env)
        finally:
            os.environ.clear()
            os.environ.update(saved)


def _measure(repo: Path, root: Path, env: dict[str, str]) -> dict[str, float]:
    with Outbox.open(root / "outbox.db") as outbox:
        recorder = Recorder.start(repo, outbox, title="bench", install_hook=False)
        sink = io.BytesIO()
        stages: dict[str, list[float]] = {
            "direct_true": _samples(lambda: _run(["true"], repo, env), ROUNDS),
            "prtrace_run_true": _samples(
                lambda: _run([*CLI, "run", "--", "true"], repo, env), ROUNDS
            ),
            "cli_startup": _samples(lambda: _run([*CLI, "--help"], repo, env), ROUNDS),
            "recorder_inprocess_run_true": _samples(
                lambda: recorder.run(["true"], stdout=sink, stderr=sink, cwd=repo), ROUNDS
            ),
        }
        notes = repo / "NOTES.md"
        counter = iter(range(10**6))

        def edit_then_run() -> None:
            notes.write_text(f"edit {next(counter)}\n")
            _run([*CLI, "run", "--", "true"], repo, env)

        stages["prtrace_run_true_after_edit"] = _samples(edit_then_run, ROUNDS)
        pytest = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
        stages["direct_pytest"] = _samples(lambda: _run(pytest, repo, env), PYTEST_ROUNDS)
        stages["prtrace_run_pytest"] = _samples(
            lambda: _run([*CLI, "run", "--", *pytest], repo, env), PYTEST_ROUNDS
        )
        events = outbox.state(recorder.info.local_id).events

    p50 = {name: statistics.median(samples) for name, samples in stages.items()}
    results: dict[str, float] = {}
    for name, samples in stages.items():
        ordered = sorted(samples)
        results[f"client_{name}_p50_ms"] = round(p50[name], 2)
        results[f"client_{name}_max_ms"] = round(ordered[-1], 2)
    results["client_run_overhead_per_command_p50_ms"] = round(
        p50["prtrace_run_true"] - p50["direct_true"], 2
    )
    results["client_run_overhead_with_one_edit_p50_ms"] = round(
        p50["prtrace_run_true_after_edit"] - p50["direct_true"], 2
    )
    results["client_recorder_overhead_inprocess_p50_ms"] = round(
        p50["recorder_inprocess_run_true"] - p50["direct_true"], 2
    )
    results["client_pytest_recording_overhead_p50_ms"] = round(
        p50["prtrace_run_pytest"] - p50["direct_pytest"], 2
    )
    results["client_events_journaled"] = events
    return results


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key}: {value}")
