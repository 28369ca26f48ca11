"""Time, one way everywhere: epoch milliseconds (device time) and aware UTC datetimes (records)."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def now_ms() -> int:
    """Wall-clock time in epoch milliseconds."""
    return time.time_ns() // 1_000_000


def utcnow() -> datetime:
    """Now, in UTC."""
    return datetime.now(UTC)


def from_ms(ts: int) -> datetime:
    """A datetime from epoch milliseconds."""
    return datetime.fromtimestamp(ts / 1000, UTC)


def to_ms(t: datetime) -> int:
    """Epoch milliseconds of an aware datetime."""
    return int(t.timestamp() * 1000)


def as_utc(t: datetime) -> datetime:
    """A time that may lack an offset (a query string's); one without is taken as UTC."""
    return t if t.tzinfo else t.replace(tzinfo=UTC)
