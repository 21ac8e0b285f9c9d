"""When to retry and how long to wait: exponential backoff with full jitter, and the
server's Retry-After (bounded) when it gives one."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 8  # total tries of one logical call, the first included
    base_s: float = 0.2
    cap_s: float = 20.0  # no single backoff sleeps longer
    max_retry_after_s: float = 60.0  # a larger Retry-After is clamped to this
    deadline_s: float = 300.0  # stop retrying once this much time has been spent waiting

    def backoff(self, retry: int, rng: random.Random | None = None) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2**retry)] (retry counts from 0)."""
        ceiling = min(self.cap_s, self.base_s * 2**retry)
        return (rng or _RNG).uniform(0, ceiling)

    def delay(self, retry: int, retry_after: str | None, rng: random.Random | None = None) -> float:
        """Retry-After when the server gave one (clamped), else the jittered backoff."""
        hinted = parse_retry_after(retry_after)
        if hinted is not None:
            return min(max(hinted, 0.0), self.max_retry_after_s)
        return self.backoff(retry, rng)


_RNG = random.Random()  # noqa: S311 - jitter, not cryptography


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
