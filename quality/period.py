"""What a period's figures are counted from, and the same cut into calendar months of the site."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from quality.rows import AlarmRow, TicketRow, month_of
from records.models import PatrolRound, WorkOrder


@dataclass(frozen=True)
class Period:
    """The records of [since, until): tickets opened, alarms raised, rounds started, work orders due."""

    since: datetime
    until: datetime
    zone: ZoneInfo
    tickets: list[TicketRow] = field(default_factory=list)
    alarms: list[AlarmRow] = field(default_factory=list)
    rounds: list[PatrolRound] = field(default_factory=list)
    work_orders: list[WorkOrder] = field(default_factory=list)
    # Devices in the directory per type, for faults per 100 devices.
    devices_by_type: dict[str, int] = field(default_factory=dict)


def month_start(month: str, zone: ZoneInfo) -> datetime:
    """The first instant of a month (YYYY-MM) in the site's time zone."""
    year, number = (int(part) for part in month.split("-"))
    return datetime.combine(date(year, number, 1), time.min, zone)


def next_month(month: str) -> str:
    """The month after `month` (YYYY-MM)."""
    year, number = (int(part) for part in month.split("-"))
    return f"{year + number // 12}-{number % 12 + 1:02d}"


def months_between(since: datetime, until: datetime, zone: ZoneInfo) -> list[str]:
    """The months (YYYY-MM) that [since, until) touches, in the site's time zone, oldest first."""
    found, month = [], month_of(since, zone)
    while month_start(month, zone) < until:
        found.append(month)
        month = next_month(month)
    return found


def by_month(period: Period) -> list[Period]:
    """The period cut at the site's month boundaries: each month's records in a period of its own."""
    cuts = []
    for month in months_between(period.since, period.until, period.zone):
        since = max(period.since, month_start(month, period.zone))
        until = min(period.until, month_start(next_month(month), period.zone))
        cuts.append(
            replace(
                period,
                since=since,
                until=until,
                tickets=[t for t in period.tickets if since <= t.opened_at < until],
                alarms=[a for a in period.alarms if since <= a.raised_at < until],
                rounds=[r for r in period.rounds if since <= r.start < until],
                work_orders=[w for w in period.work_orders if since <= w.due_at < until],
            )
        )
    return cuts
