"""Kept for shells set up by earlier versions, whose snippet (already eval'd, or pasted into
an rc file) starts its agent as `python -m prtrace_cli.shell agent bash|zsh`: the shell
integration is prtrace_client/recorder/shell.py now."""

import sys

from prtrace_client.recorder.shell import main

if __name__ == "__main__":
    sys.exit(main())
