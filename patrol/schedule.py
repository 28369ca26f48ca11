"""When a plan's rounds start: its weekdays and start times, in the site's time zone, as UTC."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


def parse_hhmm(value: str) -> time:
    """ "22:00" → 22:00; a ValueError names what is wrong."""
    hours, _, minutes = value.partition(":")
    if not (hours.isdigit() and len(hours) <= 2 and minutes.isdigit() and len(minutes) == 2):
        raise ValueError(f"{value!r} is not HH:MM")
    return time(int(hours), int(minutes))


def occurrences(
    weekdays: Sequence[int],
    start_times: Sequence[str],
    valid_from: date,
    valid_until: date | None,
    zone: ZoneInfo,
    since: datetime,
    until: datetime,
) -> list[datetime]:
    """Start times (UTC) in [since, until) on the plan's weekdays (ISO, 1 = Monday) and dates."""
    found: list[datetime] = []
    day = max(since.astimezone(zone).date() - timedelta(days=1), valid_from)
    last = until.astimezone(zone).date()
    if valid_until is not None:
        last = min(last, valid_until)
    times = sorted(parse_hhmm(t) for t in start_times)
    while day <= last:
        if day.isoweekday() in weekdays:
            for t in times:
                start = datetime.combine(day, t, tzinfo=zone).astimezone(UTC)
                if since <= start < until:
                    found.append(start)
        day += timedelta(days=1)
    return found
