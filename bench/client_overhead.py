"""Client overhead per recorded command: `prtrace run -- CMD` against running CMD directly,
in a git repository (a copy of the buggy example) with a recording session open.

  direct_true                 `true` run directly (process start only)
  prtrace_run_true            `prtrace run -- true` through the session's recorder process
                              (the fast path: a minimal-import client, a socket round trip
                              for the edit check and one for the journaled event)
  direct_true_after_edit      one file edited, then `true` (the bare side of the next)
  prtrace_run_true_after_edit one file edited, then `prtrace run -- true` (diff + file_edit)
  prtrace_run_true_direct     `prtrace run -- true` with no recorder (--no-recorder: the full
                              CLI in a new process, as before the recorder existed)
  recorder_inprocess_run_true Recorder.run(["true"]) inside one process
  cli_startup                 `prtrace --help` (interpreter + CLI imports)
  bash_typed_true / bash_typed_true_recorded   `true` (a builtin) typed in an interactive bash,
                              plain and with the shell integration (prtrace record shell bash):
                              per command, from bash's own clock over a batch of commands
  direct_pytest / prtrace_run_pytest   the example's test suite, plain and recorded

Bare and recorded run interleaved, round by round, so load on the machine hits both; p50 and
p99 of each, and the overhead (recorded minus bare, same run) at p50 and p99.
The client's modules are compiled first, as installing a wheel does (with
PYTHONDONTWRITEBYTECODE set, an editable install would compile the client at every run).
Nothing touches the network: the recorder runs without an API (no live delivery).
"""

from __future__ import annotations

import io
import os
import py_compile
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import prtrace_cli
import prtrace_client
import prtrace_client.recorder
from prtrace_cli import fast
from prtrace_client.outbox import Outbox
from prtrace_client.recorder import protocol
from prtrace_client.recorder.session import Recorder

REPO_BUGGY = Path(__file__).resolve().parent.parent / "examples" / "repo-buggy"
ROUNDS = 100
SLOW_ROUNDS = 15  # the direct path: half a second each
PYTEST_ROUNDS = 5
SHELL_ROUNDS = 5  # batches of SHELL_BATCH typed commands, plain and recorded
SHELL_BATCH = 40
CLI = [str(Path(sys.executable).with_name("prtrace"))]  # the console script users run


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


def compile_client() -> None:
    """Byte-compile what the fast path imports, as a wheel's installation does."""
    for module in (prtrace_cli, fast, prtrace_client, prtrace_client.recorder, protocol):
        assert module.__file__ is not None
        py_compile.compile(module.__file__, doraise=True)


def run() -> dict[str, float]:
    compile_client()
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
            "PRTRACE_CONFIG": str(root / "no-config.toml"),  # no API: journal only
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
    stages: dict[str, list[float]] = {}
    notes = repo / "NOTES.md"
    counter = iter(range(10**6))

    def edit_then(argv: list[str]) -> Callable[[], None]:
        def edit_and_run() -> None:
            notes.write_text(f"edit {next(counter)}\n")
            _run(argv, repo, env)

        return edit_and_run

    # The direct path first (no recorder process), then a session with one.
    _run([*CLI, "record", "start", "--title", "bench", "--no-hook", "--no-recorder"], repo, env)
    stages["prtrace_run_true_direct"] = _samples(
        lambda: _run([*CLI, "run", "--", "true"], repo, env), SLOW_ROUNDS
    )
    _run([*CLI, "record", "stop"], repo, env)
    _run([*CLI, "record", "start", "--title", "bench", "--no-hook"], repo, env)
    try:
        # Bare and recorded interleaved round by round: load on the machine hits both.
        bare, recorded = _paired(
            lambda: _run(["true"], repo, env),
            lambda: _run([*CLI, "run", "--", "true"], repo, env),
            ROUNDS,
        )
        stages["direct_true"], stages["prtrace_run_true"] = bare, recorded
        bare, recorded = _paired(
            edit_then(["true"]), edit_then([*CLI, "run", "--", "true"]), ROUNDS
        )
        stages["direct_true_after_edit"], stages["prtrace_run_true_after_edit"] = bare, recorded
        status = protocol.request(str(repo / ".git" / "prtrace"), {"op": "status"})
        stages["cli_startup"] = _samples(lambda: _run([*CLI, "--help"], repo, env), SLOW_ROUNDS)
        plain, typed = [], []
        for _ in range(SHELL_ROUNDS):
            plain.append(_typed_ms_per_command(repo, env, integrated=False))
            typed.append(_typed_ms_per_command(repo, env, integrated=True))
        stages["bash_typed_true"], stages["bash_typed_true_recorded"] = plain, typed
        pytest = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
        stages["direct_pytest"] = _samples(lambda: _run(pytest, repo, env), PYTEST_ROUNDS)
        stages["prtrace_run_pytest"] = _samples(
            lambda: _run([*CLI, "run", "--", *pytest], repo, env), PYTEST_ROUNDS
        )
    finally:
        _run([*CLI, "record", "stop"], repo, env)
    with Outbox.open(root / "outbox.db") as outbox:
        events = sum(state.events for state in outbox.sessions())
        recorder = Recorder.start(  # the sessions before left NOTES.md behind
            repo, outbox, title="bench in-process", install_hook=False, allow_dirty=True
        )
        sink = io.BytesIO()
        stages["recorder_inprocess_run_true"] = _samples(
            lambda: recorder.run(["true"], stdout=sink, stderr=sink, cwd=repo), ROUNDS
        )

    results: dict[str, float] = {}
    for name, samples in stages.items():
        results[f"client_{name}_p50_ms"] = round(_percentile(samples, 50), 2)
        results[f"client_{name}_p99_ms"] = round(_percentile(samples, 99), 2)
    for label, with_prtrace, without in (
        ("run", "prtrace_run_true", "direct_true"),
        ("run_with_one_edit", "prtrace_run_true_after_edit", "direct_true_after_edit"),
        ("run_direct_path", "prtrace_run_true_direct", "direct_true"),
        ("recorder_inprocess", "recorder_inprocess_run_true", "direct_true"),
        ("pytest_recording", "prtrace_run_pytest", "direct_pytest"),
        ("bash_typed", "bash_typed_true_recorded", "bash_typed_true"),
    ):
        for q in (50, 99):
            results[f"client_{label}_overhead_p{q}_ms"] = round(
                _percentile(stages[with_prtrace], q) - _percentile(stages[without], q), 2
            )
    results["client_events_journaled"] = events
    # Begins the recorder answered from kept stats, without running git.
    results["client_recorder_requests"] = int(status["requests"])  # type: ignore[call-overload]
    results["client_recorder_git_scans"] = int(status["git_scans"])  # type: ignore[call-overload]
    return results


def side_by_side(results: dict[str, float]) -> list[tuple[str, str, str, str, str]]:
    """Rows of the bench table: each case beside its bare command, p50 and p99 (ms)."""
    rows = []
    for label, stage, overhead in (
        ("true", "direct_true", None),
        ("prtrace run -- true", "prtrace_run_true", "run"),
        ("a file changed, then true", "direct_true_after_edit", None),
        ("a file changed, then prtrace run -- true", "prtrace_run_true_after_edit",
         "run_with_one_edit"),
        ("prtrace run -- true, no recorder", "prtrace_run_true_direct", "run_direct_path"),
        ("pytest (example suite)", "direct_pytest", None),
        ("prtrace run -- pytest", "prtrace_run_pytest", "pytest_recording"),
        ("prtrace --help", "cli_startup", None),
        ("true typed in bash", "bash_typed_true", None),
        ("true typed in bash, shell integration", "bash_typed_true_recorded", "bash_typed"),
    ):  # fmt: skip
        extra = (
            (
                f"+{results[f'client_{overhead}_overhead_p50_ms']:,}",
                f"+{results[f'client_{overhead}_overhead_p99_ms']:,}",
            )
            if overhead
            else ("", "")
        )
        rows.append(
            (
                label,
                f"{results[f'client_{stage}_p50_ms']:,}",
                f"{results[f'client_{stage}_p99_ms']:,}",
                *extra,
            )
        )
    return rows


def _typed_ms_per_command(repo: Path, env: dict[str, str], *, integrated: bool) -> float:
    """`true` typed SHELL_BATCH times in an interactive bash: ms per command by bash's clock
    (prompts and hooks included, the shell's and the helper's start-up not)."""
    lines = [f'eval "$({CLI[0]} record shell bash)"'] if integrated else []
    lines += ["__t0=$EPOCHREALTIME", *["true"] * SHELL_BATCH, "__t1=$EPOCHREALTIME"]
    lines += ['echo "elapsed $__t0 $__t1"', "exit"]
    done = subprocess.run(
        ["bash", "--norc", "--noprofile", "-i"],  # noqa: S607
        cwd=repo,
        env=env,
        input="\n".join([*lines, ""]),
        capture_output=True,
        text=True,
        check=True,
    )
    _, start, end = next(
        line for line in done.stdout.splitlines() if line.startswith("elapsed ")
    ).split()
    return (float(end) - float(start)) * 1000 / SHELL_BATCH


def _paired(
    first: Callable[[], object], second: Callable[[], object], rounds: int
) -> tuple[list[float], list[float]]:
    first()
    second()
    a: list[float] = []
    b: list[float] = []
    for _ in range(rounds):
        for fn, taken in ((first, a), (second, b)):
            start = time.perf_counter()
            fn()
            taken.append((time.perf_counter() - start) * 1000)
    return a, b


def _percentile(samples: list[float], q: int) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key}: {value}")
