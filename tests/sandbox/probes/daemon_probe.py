# ruff: noqa: S606 - deliberately hostile code, run only inside the sandbox
"""Runs INSIDE the sandbox: leaves a daemon behind (double fork + setsid, so it leaves the
process group) that keeps appending to a file, then hangs until the wall clock kills the
run. The host side checks that the heartbeat stopped and no such process survives."""

import json
import os
import time
from pathlib import Path

CONFIG = json.loads(Path("probe_config.json").read_text())


def test_daemon_then_hang():
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            heartbeat = Path("heartbeat").resolve()
            # The token in argv lets the host find this process if it survived.
            os.execv(
                "/usr/bin/python3",
                [
                    "python3",
                    "-c",
                    "import sys, time\n"
                    "while True:\n"
                    "    open(sys.argv[1], 'a').write('beat\\n')\n"
                    "    time.sleep(0.05)\n",
                    str(heartbeat),
                    CONFIG["token"],
                ],
            )
        os._exit(0)
    deadline = time.monotonic() + 5
    while not Path("heartbeat").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    Path("daemon-started").write_text("yes")
    time.sleep(600)
