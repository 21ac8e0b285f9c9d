"""`make local` (`python -m local_cloud`) as a user runs it: it becomes ready, writes
local.json, serves the API, and on Ctrl-C stops cleanly, leaving no process behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def children_of(pid: int) -> set[int]:
    found: set[int] = set()
    for listing in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found.update(int(child) for child in listing.read_text().split())
        except OSError:  # a thread ended meanwhile
            continue
    return found


def alive(pid: int) -> bool:
    """Running (a zombie has ended, but still shows in /proc until reaped)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    state = next(line for line in status.splitlines() if line.startswith("State:"))
    return "zombie" not in state


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def test_make_local_runs_until_ctrl_c_and_leaves_nothing_behind(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    local_json = state_dir / "local.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PRTRACE_", "MOTO_"))}
    log_path = tmp_path / "make-local.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "local_cloud",
                "--aws-port",
                "0",
                "--api-port",
                "0",
                "--state-dir",
                str(state_dir),
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            # As a shell starts a background job: SIGINT ignored. Ctrl-C must stop it anyway.
            preexec_fn=_ignore_sigint,
        )
    try:
        # Start-up is ~15 s on a quiet machine; a loaded one (CI neighbours) takes longer.
        deadline = time.monotonic() + 180
        while not local_json.exists():
            assert process.poll() is None, log_path.read_text()[-3000:]
            assert time.monotonic() < deadline, "no local.json after 180 s"
            time.sleep(0.2)
        time.sleep(0.2)  # written in one call, but let the writer finish
        state = json.loads(local_json.read_text())
        assert {"endpoint", "token", "aws_endpoint"} <= set(state)
        assert state["token"].startswith("prt_")
        assert local_json.stat().st_mode & 0o077 == 0  # it holds a token

        ready = httpx.get(f"{state['endpoint']}/readyz", timeout=10)
        assert ready.status_code == 200, ready.text
        listed = httpx.get(
            f"{state['endpoint']}/v1/traces",
            headers={"authorization": f"Bearer {state['token']}"},
            timeout=10,
        )
        assert listed.status_code == 200, listed.text
        assert listed.json() == {"items": [], "next_token": None}
        aws_answer = httpx.get(f"{state['aws_endpoint']}/moto-api/", timeout=10)
        assert aws_answer.status_code == 200

        children = children_of(process.pid)
        assert children, "the Lambda workers of the API and the authorizer are its children"

        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=15) == 0, log_path.read_text()[-3000:]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    assert not local_json.exists()
    left = sorted(pid for pid in children if alive(pid))
    assert left == [], [Path(f"/proc/{p}/cmdline").read_bytes() for p in left]
    try:
        httpx.get(f"{state['endpoint']}/healthz", timeout=2)
    except httpx.TransportError:
        pass  # nothing listens there any more
    else:
        raise AssertionError("the API still answers after Ctrl-C")
