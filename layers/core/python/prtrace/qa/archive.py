"""Safe extraction of workspace snapshots (tar, tar.gz, tar.zst).

The archive comes from the client, so it is hostile until proven otherwise. Extraction is
streamed member by member and refuses, naming the member:
absolute names, `..` components, duplicate names, devices, fifos and other special members,
hard links to anything but a regular file extracted earlier, symlinks whose target leaves
the tree (checked lexically per member, then by resolving every link once the tree is
complete, because a chain of links can escape where each link alone does not), and
archives over the member count, per-file size, total size or compression ratio caps.
Nothing is ever written through a symlink: parent directories are created one component
at a time and an existing component must be a real directory.
"""

from __future__ import annotations

import os
import posixpath
import stat
import tarfile
from pathlib import Path
from typing import IO, Annotated, Final

import zstandard
from pydantic import BaseModel, ConfigDict, Field

from prtrace.qa.errors import UnsafeArchive
from prtrace.qa.shared_dirs import READABLE
from prtrace.snapshot_media import tar_stream

_WHOLE_ARCHIVE: Final = "<archive>"
_COPY_CHUNK: Final = 1024 * 1024


class ArchiveLimits(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_members: Annotated[int, Field(ge=1)] = 50_000
    max_file_bytes: Annotated[int, Field(ge=1)] = 128 * 1024 * 1024
    max_total_bytes: Annotated[int, Field(ge=1)] = 1024 * 1024 * 1024
    # Decompressed bytes per compressed byte. Source trees compress ~5-20x; bombs ~1000x.
    max_ratio: Annotated[float, Field(gt=1)] = 200.0
    # Small archives of tiny files have high ratios (tar pads to 512 bytes) and are harmless.
    ratio_grace_bytes: Annotated[int, Field(ge=0)] = 16 * 1024 * 1024


class _CountingReader:
    """Wraps the decompressed stream: enforces the total-size and ratio caps as bytes arrive,
    before tarfile or our writer ever holds them."""

    def __init__(self, inner: IO[bytes], compressed: IO[bytes], limits: ArchiveLimits) -> None:
        self._inner = inner
        self._compressed = compressed
        self._limits = limits
        self.total = 0

    def read(self, size: int = -1) -> bytes:
        data = self._inner.read(size if size >= 0 else _COPY_CHUNK)
        self.total += len(data)
        # tar framing adds headers (PAX: two blocks + their data) and padding per member,
        # and up to a 10 KiB record at the end: allowed on top of the content cap.
        framing = 2048 * self._limits.max_members + 20 * 1024
        if self.total > self._limits.max_total_bytes + framing:
            raise UnsafeArchive(
                _WHOLE_ARCHIVE,
                f"expands beyond the {self._limits.max_total_bytes} byte cap",
            )
        if self.total > self._limits.ratio_grace_bytes:
            consumed = max(self._compressed.tell(), 1)
            if self.total / consumed > self._limits.max_ratio:
                raise UnsafeArchive(
                    _WHOLE_ARCHIVE,
                    f"compression ratio above {self._limits.max_ratio:g}:1 (a decompression bomb?)",
                )
        return data


def _decompressed(raw: IO[bytes], media_type: str) -> IO[bytes]:
    stream = tar_stream(raw, media_type)
    if stream is None:
        raise UnsafeArchive(_WHOLE_ARCHIVE, f"unsupported media type {media_type!r}")
    return stream


def _safe_name(raw_name: str) -> str:
    """The member's path relative to the root, or UnsafeArchive."""
    if "\x00" in raw_name:
        raise UnsafeArchive(raw_name, "NUL byte in the name")
    if raw_name.startswith("/"):
        raise UnsafeArchive(raw_name, "absolute path")
    parts = [p for p in raw_name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchive(raw_name, "'..' component leaves the tree")
    return "/".join(parts)


def _symlink_stays_inside(name: str, target: str) -> bool:
    if not target or target.startswith("/"):
        return False
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(name), target))
    return resolved != ".." and not resolved.startswith("../")


class _Extractor:
    def __init__(self, root: Path, limits: ArchiveLimits, owner: tuple[int, int] | None) -> None:
        self.root = root
        self.limits = limits
        self.owner = owner
        self.seen: set[str] = set()
        self.regular_files: set[str] = set()
        self.symlinks: list[str] = []
        self.members = 0
        self.declared_total = 0

    def _parent_dir(self, name: str) -> Path:
        """Create the member's parent directories without following any symlink."""
        current = self.root
        for part in name.split("/")[:-1]:
            current = current / part
            try:
                info = os.lstat(current)
            except FileNotFoundError:
                os.mkdir(current)
                os.chmod(current, READABLE)  # not left to the umask
                self._chown(current)
                continue
            if not stat.S_ISDIR(info.st_mode):
                raise UnsafeArchive(name, f"parent {part!r} is not a directory (a symlink?)")
        return current

    def _chown(self, path: Path) -> None:
        if self.owner is not None:
            os.lchown(path, *self.owner)

    def add(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        self.members += 1
        if self.members > self.limits.max_members:
            raise UnsafeArchive(member.name, f"more than {self.limits.max_members} members")
        name = _safe_name(member.name)
        if not name:
            if member.isdir():
                return  # the root itself ("./")
            raise UnsafeArchive(member.name, "empty name")
        if name in self.seen and not member.isdir():
            raise UnsafeArchive(member.name, "duplicate entry")
        self.seen.add(name)
        if member.isdev() or member.isfifo():
            kind = "fifo" if member.isfifo() else "device"
            raise UnsafeArchive(member.name, f"{kind} members are not allowed")
        if member.issym():
            self._symlink(name, member)
        elif member.islnk():
            self._hardlink(name, member)
        elif member.isdir():
            self._directory(name)
        elif member.isreg():
            self._regular(tar, name, member)
        else:
            raise UnsafeArchive(member.name, f"unsupported member type {member.type!r}")

    def _directory(self, name: str) -> None:
        path = self._parent_dir(name) / name.rsplit("/", 1)[-1]
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            os.mkdir(path)
            os.chmod(path, READABLE)
            self._chown(path)
            return
        if not stat.S_ISDIR(info.st_mode):
            raise UnsafeArchive(name, "directory over an existing non-directory")

    def _regular(self, tar: tarfile.TarFile, name: str, member: tarfile.TarInfo) -> None:
        if member.size > self.limits.max_file_bytes:
            raise UnsafeArchive(
                name, f"{member.size} bytes, over the {self.limits.max_file_bytes} byte cap"
            )
        self.declared_total += member.size
        if self.declared_total > self.limits.max_total_bytes:
            raise UnsafeArchive(name, f"total over the {self.limits.max_total_bytes} byte cap")
        path = self._parent_dir(name) / name.rsplit("/", 1)[-1]
        mode = 0o755 if member.mode & 0o111 else 0o644  # never setuid/setgid/sticky
        source = tar.extractfile(member)
        if source is None:  # pragma: no cover - regular members always have data
            raise UnsafeArchive(name, "no data")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
        with os.fdopen(fd, "wb") as out:
            while chunk := source.read(_COPY_CHUNK):
                out.write(chunk)
            os.fchmod(out.fileno(), mode)
            if self.owner is not None:
                os.fchown(out.fileno(), *self.owner)
        self.regular_files.add(name)

    def _symlink(self, name: str, member: tarfile.TarInfo) -> None:
        if not _symlink_stays_inside(name, member.linkname):
            raise UnsafeArchive(name, f"symlink to {member.linkname!r} points outside the tree")
        path = self._parent_dir(name) / name.rsplit("/", 1)[-1]
        os.symlink(member.linkname, path)
        self._chown(path)
        self.symlinks.append(name)

    def _hardlink(self, name: str, member: tarfile.TarInfo) -> None:
        try:
            target = _safe_name(member.linkname)
        except UnsafeArchive:
            raise UnsafeArchive(
                name, f"hard link to {member.linkname!r} outside the tree"
            ) from None
        if target not in self.regular_files:
            raise UnsafeArchive(
                name, f"hard link to {member.linkname!r}, not a regular file of this archive"
            )
        path = self._parent_dir(name) / name.rsplit("/", 1)[-1]
        os.link(self.root / target, path, follow_symlinks=False)

    def check_symlinks_resolve_inside(self) -> None:
        real_root = os.path.realpath(self.root)
        for name in self.symlinks:
            resolved = os.path.realpath(self.root / name)
            if resolved != real_root and not resolved.startswith(real_root + os.sep):
                raise UnsafeArchive(name, "symlink chain resolves outside the tree")


def extract_archive(
    archive: Path,
    media_type: str,
    dest: Path,
    limits: ArchiveLimits | None = None,
    owner: tuple[int, int] | None = None,
) -> None:
    """Extract into the empty directory `dest`; raise UnsafeArchive on the first refusal.
    `owner` (uid, gid) owns everything extracted, so an unprivileged sandbox can write it."""
    limits = limits or ArchiveLimits()
    extractor = _Extractor(dest, limits, owner)
    with archive.open("rb") as raw:
        stream = _CountingReader(_decompressed(raw, media_type), raw, limits)
        try:
            # "r|": a forward-only stream; tarfile never seeks or reads ahead of our checks.
            with tarfile.open(fileobj=stream, mode="r|") as tar:  # type: ignore[call-overload]
                for member in tar:
                    extractor.add(tar, member)
        except UnsafeArchive:
            raise
        except (tarfile.TarError, OSError, EOFError, zstandard.ZstdError) as error:
            raise UnsafeArchive(_WHOLE_ARCHIVE, f"unreadable archive: {error}") from None
    extractor.check_symlinks_resolve_inside()
