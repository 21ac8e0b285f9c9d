"""The example's workspace snapshots: `repo-buggy/` before the fix and with `fix.diff`
applied, as deterministic tar.gz archives (same tree, same bytes), referenced by the
trace's finalize request. `python -m examples.snapshots` rebuilds them; a test fails when
the committed archives drift from the repository or the diff.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from prtrace.schema import artifact_uri
from prtrace_client.recorder.snapshot import deterministic_tar_gz

EXAMPLES = Path(__file__).resolve().parent
REPO = EXAMPLES / "repo-buggy"
TRACE_DIR = EXAMPLES / "sample-trace-chunks"
FIX = TRACE_DIR / "artifacts" / "fix.diff"
SKIPPED = {"__pycache__", ".pytest_cache", ".git"}


def workspace_archive(directory: Path) -> bytes:
    """A tar.gz of the tree with fixed owners, modes and times, in name order (the same
    archive format `prtrace record` uploads)."""
    names = [
        path.relative_to(directory).as_posix()
        for path in directory.rglob("*")
        if not SKIPPED & set(path.relative_to(directory).parts)
    ]
    return deterministic_tar_gz(directory, names)


def fixed_workspace(target: Path) -> Path:
    """repo-buggy with the recorded fix applied by git, exactly as committed."""
    shutil.copytree(REPO, target, ignore=shutil.ignore_patterns(*SKIPPED))
    subprocess.run(  # noqa: S603 - git applying the example's own diff
        ["git", "apply", "--whitespace=nowarn", str(FIX)],  # noqa: S607
        cwd=target,
        check=True,
    )
    return target


def build() -> dict[str, bytes]:
    with tempfile.TemporaryDirectory() as scratch:
        final = fixed_workspace(Path(scratch) / "workspace")
        return {
            "workspace-base.tar.gz": workspace_archive(REPO),
            "workspace-final.tar.gz": workspace_archive(final),
        }


def blob_ref(data: bytes, media_type: str) -> dict[str, Any]:
    digest = hashlib.sha256(data).hexdigest()
    return {
        "uri": artifact_uri(digest),
        "sha256": digest,
        "size": len(data),
        "media_type": media_type,
    }


def finalize_request(archives: dict[str, bytes], expected_chunks: int) -> dict[str, Any]:
    return {
        "expected_chunks": expected_chunks,
        "snapshots": {
            "base": blob_ref(archives["workspace-base.tar.gz"], "application/gzip"),
            "final": blob_ref(archives["workspace-final.tar.gz"], "application/gzip"),
        },
    }


def main() -> None:
    archives = build()
    for name, data in archives.items():
        (TRACE_DIR / "artifacts" / name).write_bytes(data)
    chunks = len(list(TRACE_DIR.glob("chunk-*.json")))
    (TRACE_DIR / "finalize.json").write_text(
        json.dumps(finalize_request(archives, chunks), indent=2) + "\n"
    )


if __name__ == "__main__":
    main()
