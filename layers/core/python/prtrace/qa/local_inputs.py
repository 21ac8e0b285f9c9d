"""Turn a local directory or archive into a stored snapshot, so `prtrace qa` runs the very
same path as the pipeline (store, verify, extract safely). A directory is packed without
virtualenvs and tool caches; an archive is taken as it is."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

from prtrace.qa.ports import ArtifactStore
from prtrace.schema import BlobRef, artifact_uri
from prtrace.snapshot_media import TAR, sniff
from prtrace.storage_keys import artifact_key


def media_type_of(path: Path) -> str:
    with path.open("rb") as handle:
        return sniff(handle.read(4))


# Local leftovers that are not the repository: caches, and virtualenvs (their interpreter
# links point outside the tree, which extraction rightly refuses).
_NOT_THE_REPOSITORY = frozenset(
    {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".tox", ".nox", ".hypothesis"}
)


def _keep(info: tarfile.TarInfo, directory: Path) -> tarfile.TarInfo | None:
    path = directory / info.name
    if path.name in _NOT_THE_REPOSITORY:
        return None
    if info.isdir() and (path / "pyvenv.cfg").is_file():
        return None
    return info


def _tar_directory(directory: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in sorted(directory.iterdir()):
            # Symlinks are stored as symlinks; extraction decides whether they may stay.
            tar.add(entry, arcname=entry.name, filter=lambda info: _keep(info, directory))
    return buffer.getvalue()


def store_local_snapshot(path: Path, store: ArtifactStore, tenant: str, trace_id: str) -> BlobRef:
    if path.is_dir():
        body, media_type = _tar_directory(path), TAR
    else:
        body, media_type = path.read_bytes(), media_type_of(path)
    digest = hashlib.sha256(body).hexdigest()
    store.put_if_absent(artifact_key(tenant, trace_id, digest), body, digest, media_type)
    return BlobRef(uri=artifact_uri(digest), sha256=digest, size=len(body), media_type=media_type)
