"""A snapshot archive's media types, defined once: a tar, plain, gzip'd or zstd-compressed;
how each is recognised from its first bytes (local snapshots), and how each is read as a
tar stream (QA's extraction, Assemble's state check)."""

from __future__ import annotations

import gzip
from typing import IO, Final, Literal, cast

import zstandard

MediaType = Literal["application/x-tar", "application/gzip", "application/zstd"]
TAR: Final = "application/x-tar"
GZIP: Final = "application/gzip"
ZSTD: Final = "application/zstd"
MEDIA_TYPES: Final[tuple[MediaType, ...]] = (TAR, GZIP, ZSTD)
# The compressed formats' magic numbers; anything else is taken for a plain tar.
_MAGIC: Final[dict[bytes, MediaType]] = {b"\x1f\x8b": GZIP, b"\x28\xb5\x2f\xfd": ZSTD}
# A bounded window keeps a crafted zstd frame from reserving gigabytes of memory.
_ZSTD_MAX_WINDOW: Final = 1 << 27


def sniff(head: bytes) -> MediaType:
    """The media type of an archive whose first bytes are `head` (4 suffice)."""
    for magic, media_type in _MAGIC.items():
        if head.startswith(magic):
            return media_type
    return TAR


def tar_stream(raw: IO[bytes], media_type: str) -> IO[bytes] | None:
    """The tar stream inside `raw`, decompressed as it is read; None when `media_type` is
    not a snapshot archive's (the caller says so in its own terms)."""
    if media_type == TAR:
        return raw
    if media_type == GZIP:
        return cast("IO[bytes]", gzip.GzipFile(fileobj=raw, mode="rb"))
    if media_type == ZSTD:
        decompressor = zstandard.ZstdDecompressor(max_window_size=_ZSTD_MAX_WINDOW)
        return cast("IO[bytes]", decompressor.stream_reader(raw, read_across_frames=True))
    return None
