"""Before anything else, the runner makes itself non-dumpable: its /proc entries (environ
holds the task's credentials URI and QA grant) become root's and no process may ptrace it
or read its memory, whatever uid a test later runs as."""

import ctypes

_PR_SET_DUMPABLE = 4
if ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
    raise SystemExit(f"prctl(PR_SET_DUMPABLE, 0) failed: errno {ctypes.get_errno()}")

import sys  # noqa: E402 - after the prctl on purpose

from functions.qa_runner.main import main  # noqa: E402

sys.exit(main())
