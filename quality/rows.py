"""The rows the figures are counted from: a ticket with its times worked out, and an alarm; the CSV of them.

The CSV export writes the same rows the figures count, so a figure can be checked in a spreadsheet
by filtering and counting its rows.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import datetime
from zoneinfo import ZoneInfo

from ground.severity import Severity
from records.models import Alarm, Ticket
from records.states import Source, Status
from tickets.timing import overdue_for

# The occupant counts as satisfied at 4 (satisfied) or 5 (very satisfied) of 5.
SATISFIED_FROM = 4


def acknowledge_start(ticket: Ticket) -> datetime:
    """When the clock to acknowledge a ticket starts: its opening, or its last reopening or graver class."""
    return ticket.ack_from or ticket.opened_at


def month_of(t: datetime, zone: ZoneInfo) -> str:
    """The month (YYYY-MM) a time falls in, in the site's time zone."""
    return t.astimezone(zone).strftime("%Y-%m")


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    return (end - start).total_seconds() if start is not None and end is not None else None


def _within(seconds: float | None, target_s: int) -> bool | None:
    return None if seconds is None else seconds <= target_s


@dataclass(frozen=True, slots=True)
class TicketRow:
    """A ticket as the figures count it; also one line of the CSV export."""

    ticket_id: int
    site: str
    month: str
    severity: Severity
    source: Source
    device_type: str | None
    device_id: str | None
    rule: str | None
    title: str
    status: Status
    opened_at: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    seconds_to_acknowledge: float | None
    target_acknowledge_s: int  # the contract's response time for the class
    acknowledged_within_target: bool | None
    seconds_to_resolve: float | None
    target_resolve_s: int  # the product's own resolve target for the class
    resolved_within_target: bool | None
    seconds_to_close: float | None
    overdue_now: bool  # unacknowledged past its response time, or unresolved past its resolve target
    cause_class: str | None
    satisfaction: int | None
    satisfied: bool | None

    @classmethod
    def of(cls, t: Ticket, now: datetime, zone: ZoneInfo) -> TicketRow:
        """The row of a ticket, judged at `now`."""
        severity = Severity(t.severity)
        to_ack = _seconds(acknowledge_start(t), t.acknowledged_at)
        to_resolve = _seconds(t.opened_at, t.resolved_at)
        return cls(
            ticket_id=t.id,
            site=t.site,
            month=month_of(t.opened_at, zone),
            severity=severity,
            source=Source(t.source),
            device_type=t.device_type,
            device_id=t.device_id,
            rule=t.rule,
            title=t.title,
            status=Status(t.status),
            opened_at=t.opened_at,
            acknowledged_at=t.acknowledged_at,
            resolved_at=t.resolved_at,
            closed_at=t.closed_at,
            seconds_to_acknowledge=to_ack,
            target_acknowledge_s=severity.response_due_s,
            acknowledged_within_target=_within(to_ack, severity.response_due_s),
            seconds_to_resolve=to_resolve,
            target_resolve_s=severity.resolve_due_s,
            resolved_within_target=_within(to_resolve, severity.resolve_due_s),
            seconds_to_close=_seconds(t.opened_at, t.closed_at),
            overdue_now=bool(overdue_for(t, now)),
            cause_class=t.cause_class.value if t.cause_class else None,
            satisfaction=t.satisfaction,
            satisfied=None if t.satisfaction is None else t.satisfaction >= SATISFIED_FROM,
        )


@dataclass(frozen=True, slots=True)
class AlarmRow:
    """An alarm as the alarm-load figures count it."""

    site: str
    device_id: str
    device_type: str
    rule: str
    raised_at: datetime
    held: bool

    @classmethod
    def of(cls, a: Alarm) -> AlarmRow:
        """The row of an alarm."""
        return cls(a.site, a.device_id, a.device_type, a.rule, a.raised_at, a.held)


CSV_COLUMNS = [f.name if f.name != "severity" else "class" for f in fields(TicketRow)]


def _cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bool):
        return "yes" if value else "no"
    return value.value if isinstance(value, Severity | Source | Status) else value


def tickets_csv(rows: Iterable[TicketRow]) -> str:
    """The rows as CSV with a header line: times in ISO 8601 UTC, yes/no, empty for none."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow([_cell(getattr(row, f.name)) for f in fields(TicketRow)])
    return out.getvalue()
