"""Media types, defined once: what the client declares for a file it uploads (by its name's
suffix), and what the service stores its own objects as. Snapshot archives' types, and how
each is read, are prtrace.snapshot_media's."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from prtrace.snapshot_media import GZIP, TAR, ZSTD

JSON: Final = "application/json"
JSONL: Final = "application/jsonl"
PARQUET: Final = "application/vnd.apache.parquet"
DIFF: Final = "text/x-diff"
TEXT: Final = "text/plain"
XML: Final = "application/xml"
OCTETS: Final = "application/octet-stream"

BY_SUFFIX: Final[dict[str, str]] = {
    ".diff": DIFF,
    ".patch": DIFF,
    ".gz": GZIP,
    ".zst": ZSTD,
    ".tar": TAR,
    ".txt": TEXT,
    ".log": TEXT,
    ".xml": XML,
    ".json": JSON,
    ".jsonl": JSONL,
    ".parquet": PARQUET,
}


def of_path(path: Path) -> str:
    """The media type a file's suffix names; octet-stream for any other."""
    return BY_SUFFIX.get(path.suffix, OCTETS)
