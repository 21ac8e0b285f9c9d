"""Kept for sessions started by earlier versions, which ran their recorder process as
`python -m prtrace_cli.recorderd REPO`: the recorder process is
prtrace_client/recorder/daemon.py now."""

import sys

from prtrace_client.recorder.daemon import main

if __name__ == "__main__":
    sys.exit(main())
