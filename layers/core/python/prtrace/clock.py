"""The one way times are written: millisecond UTC with `Z` (RFC 3339), so stored times
compare correctly as text. The client writes event times the same way."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> str:
    return utc_timestamp(datetime.now(UTC))


def utc_timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
