"""`python -m infra_cdk.local`, as it was typed before the local cloud got its own package:
says so on stderr, then runs `python -m local_cloud` with the same arguments. By module
name (runpy), not by import: the CDK app imports nothing of the local cloud."""

from __future__ import annotations

import runpy
import sys

if __name__ == "__main__":
    print(
        "`python -m infra_cdk.local` is deprecated: run `python -m local_cloud`.", file=sys.stderr
    )
    runpy.run_module("local_cloud", run_name="__main__", alter_sys=True)
