"""The example's workspace snapshots: `repo-buggy/` before the fix and with `fix.diff`
applied, as deterministic tar.gz archives (same tree, same bytes), referenced by the
trace's finalize request. `python -m examples.snapshots` rebuilds them; a test fails when
the committed archives drift from the repository or the diff.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Any

EXAMPLES = Path(__file__).resolve().parent
REPO = EXAMPLES / "repo-buggy"
TRACE_DIR = EXAMPLES / "sample-trace-chunks"
FIX = TRACE_DIR / "artifacts" / "fix.diff"
SKIPPED = {"__pycache__", ".pytest_cache", ".git"}


def workspace_archive(directory: Path) -> bytes:
    """A tar.gz of the tree with fixed owners, modes and times, in name order."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for path in sorted(directory.rglob("*")):
            relative = path.relative_to(directory)
            if SKIPPED & set(relative.parts):
                continue
            info = tarfile.TarInfo(relative.as_posix())
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if path.is_dir():
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                archive.addfile(info)
            else:
                data = path.read_bytes()
                info.size, info.mode = len(data), 0o644
                archive.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), compresslevel=9, mtime=0)


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
        "uri": f"artifact://sha256/{digest}",
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
