"""Build tar archives member by member, including the hostile kinds tarfile will write."""

from __future__ import annotations

import gzip
import io
import tarfile
from dataclasses import dataclass

import zstandard


@dataclass(frozen=True)
class Member:
    name: str
    kind: bytes = tarfile.REGTYPE
    data: bytes = b""
    linkname: str = ""
    mode: int = 0o644


def tar_bytes(members: list[Member]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for member in members:
            info = tarfile.TarInfo(member.name)
            info.type = member.kind
            info.mode = member.mode
            info.linkname = member.linkname
            if member.kind == tarfile.REGTYPE:
                info.size = len(member.data)
                tar.addfile(info, io.BytesIO(member.data))
            else:
                tar.addfile(info)
    return buffer.getvalue()


def compress(data: bytes, media_type: str) -> bytes:
    if media_type == "application/gzip":
        return gzip.compress(data, compresslevel=9)
    if media_type == "application/zstd":
        return zstandard.ZstdCompressor(level=19).compress(data)
    return data
