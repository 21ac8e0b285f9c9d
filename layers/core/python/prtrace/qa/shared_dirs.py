"""Directories the sandbox uid must reach. Modes are set explicitly: the caller's umask
(077 on hardened hosts) must not make them private to root."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

# Where QA makes its work directories unless QASettings.work_dir says otherwise.
DEFAULT_WORK_DIR: Final = Path("/var/tmp/prtrace-qa")  # noqa: S108 - private subdirectories
READABLE: Final = 0o755  # the sandbox uid lists and reads
TRAVERSE_ONLY: Final = 0o711  # the sandbox uid passes through to a path it knows


def shared_dir(path: Path, mode: int = READABLE) -> Path:
    """Create `path` and its missing parents with `mode` (0o755 readable, 0o711 traverse
    only); an existing directory is left as it is."""
    missing: list[Path] = []
    current = path
    while not current.exists():
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        try:
            directory.mkdir()
        except FileExistsError:
            continue  # created concurrently
        os.chmod(directory, mode)
    return path


def private_subdir(parent: Path, name: str, mode: int) -> Path:
    """A new directory (it must not exist) with exactly `mode`."""
    path = parent / name
    path.mkdir()
    os.chmod(path, mode)
    return path
