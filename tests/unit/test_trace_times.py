"""Every time the API shows for a trace has one format (UTC, milliseconds, Z), whoever
wrote it: the services or the state machine's own clock."""

from __future__ import annotations

import pytest

from prtrace.records import TraceRecord, rfc3339_ms


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        ("2026-12-05T08:44:12.123Z", "2026-12-05T08:44:12.123Z"),
        ("2026-12-05T08:44:12.123456Z", "2026-12-05T08:44:12.123Z"),  # Step Functions
        ("2026-12-05T08:44:12.123456+00:00", "2026-12-05T08:44:12.123Z"),
        ("2026-12-05T09:44:12+01:00", "2026-12-05T08:44:12.000Z"),
        ("2026-12-05T08:44:12", "2026-12-05T08:44:12.000Z"),  # naive: taken as UTC
        ("not a time", "not a time"),
    ],
)
def test_times_are_shown_in_one_format(stored: str, shown: str) -> None:
    assert rfc3339_ms(stored) == shown


def test_a_trace_view_shows_updated_at_like_created_at() -> None:
    record = TraceRecord(
        tenant="acme",
        trace_id="tr_1",
        status="testing",
        metadata={},
        created_at="2026-12-05T08:00:00.000Z",
        updated_at="2026-12-05T08:44:12.5+00:00",
    )
    assert record.public()["updated_at"] == "2026-12-05T08:44:12.500Z"
