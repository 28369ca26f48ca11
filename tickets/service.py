"""Alarms become tickets; people work tickets. Every change is audited, and races cannot open two tickets.

`TicketService` is the one class the rest of the service uses; its parts live beside it:
`alarms.py` (alarm events to tickets), `actions.py` (people's tickets and actions), `changes.py`
(what listeners hear), `store.py` (what they share).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import and_, case, func, or_, select

from ground.severity import Severity
from records.models import Alarm, Ticket
from tickets.actions import ActionFields, NewTicket
from tickets.changes import ChangeKind, TicketChange, Unacknowledged
from tickets.lifecycle import RecordMissing, Source, Status, TransitionRefused
from tickets.reports import Reported, ReportIntake
from tickets.store import OPEN_STATUSES, SYSTEM, NotFound
from tickets.timing import TicketTiming


@dataclass
class TicketFilter:
    """Filters of `GET /api/v1/tickets`."""

    status: Status | None = None
    severity: Severity | None = None
    site: str | None = None
    device_id: str | None = None
    source: Source | None = None
    limit: int = 100
    offset: int = 0
    # Only these sites (a user limited to sites); None: every site.
    sites: frozenset[str] | None = None
    # Only tickets overdue: open past their response due, or unresolved past their resolve target.
    overdue: bool = False
    # Newest first, or what is due first: unresolved tickets by response time, then the rest.
    due_first: bool = False


class TicketService(TicketTiming, ReportIntake):
    """Applies alarm events and people's actions to the records; answers what is open and due."""

    # --- escalation -------------------------------------------------------------------------

    def mark_notified(self, ticket_id: int) -> TicketChange | None:
        """Count a re-notification of an unacknowledged ticket; None once it is acknowledged or gone."""
        with self.db.session() as s:
            ticket = s.get(Ticket, ticket_id, with_for_update=True)
            if ticket is None or ticket.status != Status.OPEN:
                return None
            ticket.notified_count += 1
            self._audit(s, ticket, SYSTEM, "renotified", {"count": ticket.notified_count})
            return self._change(ticket, ChangeKind.RENOTIFIED)

    def escalate(self, ticket_id: int) -> TicketChange | None:
        """Escalate an unacknowledged ticket one level; None once it is acknowledged or gone."""
        with self.db.session() as s:
            ticket = s.get(Ticket, ticket_id, with_for_update=True)
            if ticket is None or ticket.status != Status.OPEN:
                return None
            ticket.escalation_level += 1
            self._audit(s, ticket, SYSTEM, "escalated", {"level": ticket.escalation_level})
            return self._change(ticket, ChangeKind.ESCALATED)

    def unacknowledged(
        self, severities: Sequence[Severity], sites: frozenset[str] | None = None
    ) -> list[Unacknowledged]:
        """Open tickets of these classes that nobody has acknowledged yet, of these sites or all."""
        q = (
            select(Ticket.id, Ticket.severity, Ticket.response_due, Ticket.escalation_level)
            .where(Ticket.status == Status.OPEN.value, Ticket.severity.in_([sev.value for sev in severities]))
            .order_by(Ticket.id)
        )
        if sites is not None:
            q = q.where(Ticket.site.in_(sorted(sites)))
        with self.db.read() as s:
            return [
                Unacknowledged(ticket_id, Severity(severity), due, level)
                for ticket_id, severity, due, level in s.execute(q)
            ]

    # --- reading ------------------------------------------------------------------------------

    def list(self, f: TicketFilter) -> Sequence[Ticket]:
        """Tickets, newest first."""
        q = select(Ticket)
        if f.status:
            q = q.where(Ticket.status == f.status.value)
        if f.severity:
            q = q.where(Ticket.severity == f.severity.value)
        if f.site:
            q = q.where(Ticket.site == f.site)
        if f.device_id:
            q = q.where(Ticket.device_id == f.device_id)
        if f.source:
            q = q.where(Ticket.source == f.source.value)
        if f.sites is not None:
            q = q.where(Ticket.site.in_(sorted(f.sites)))
        if f.overdue:
            now = self.clock()
            working = Ticket.status.in_([st.value for st in OPEN_STATUSES])
            q = q.where(
                or_(
                    and_(Ticket.status == Status.OPEN.value, Ticket.response_due < now),
                    and_(working, Ticket.resolve_due < now),
                )
            )
        if f.due_first:
            unresolved = case((Ticket.status.in_([st.value for st in OPEN_STATUSES]), 0), else_=1)
            q = q.order_by(unresolved, Ticket.response_due, Ticket.id.desc())
        else:
            q = q.order_by(Ticket.id.desc())
        with self.db.read() as s:
            return s.scalars(q.limit(f.limit).offset(f.offset)).all()

    def counts(
        self, sites: frozenset[str] | None = None, source: Source | None = None
    ) -> dict[tuple[str, str], int]:
        """How many tickets there are by (class, status), of some sites or all, of one source or all."""
        q = select(Ticket.severity, Ticket.status, func.count()).group_by(Ticket.severity, Ticket.status)
        if sites is not None:
            q = q.where(Ticket.site.in_(sorted(sites)))
        if source is not None:
            q = q.where(Ticket.source == source.value)
        with self.db.read() as s:
            return {(Severity(c).value, Status(st).value): n for c, st, n in s.execute(q).all()}

    def open_counts(self) -> dict[str, int]:
        """How many tickets are not yet resolved, by site."""
        q = (
            select(Ticket.site, func.count())
            .where(Ticket.status.in_([st.value for st in OPEN_STATUSES]))
            .group_by(Ticket.site)
        )
        with self.db.read() as s:
            return {site: count for site, count in s.execute(q).all()}

    def alarms(
        self,
        active_only: bool,
        limit: int = 200,
        site: str | None = None,
        device_id: str | None = None,
        sites: frozenset[str] | None = None,
        ticket_id: int | None = None,
    ) -> Sequence[Alarm]:
        """Alarms, newest first; of one device when site and device_id are given, of `sites`, of a ticket."""
        q = select(Alarm)
        if ticket_id is not None:
            q = q.where(Alarm.ticket_id == ticket_id)
        if active_only:
            q = q.where(Alarm.active.is_(True))
        if sites is not None:
            q = q.where(Alarm.site.in_(sorted(sites)))
        if site is not None and device_id is not None:
            q = q.where(Alarm.site == site, Alarm.device_id == device_id)
        with self.db.read() as s:
            return s.scalars(q.order_by(Alarm.id.desc()).limit(limit)).all()

    def active_alarm_classes(self) -> Sequence[tuple[str, str, str, str]]:
        """(site, device id, rule, class) of every active alarm, newest first: the columns only."""
        q = (
            select(Alarm.site, Alarm.device_id, Alarm.rule, Alarm.severity)
            .where(Alarm.active.is_(True))
            .order_by(Alarm.id.desc())
        )
        with self.db.read() as s:
            return [(site, device_id, rule, severity) for site, device_id, rule, severity in s.execute(q)]


__all__ = [
    "ActionFields",
    "ChangeKind",
    "NewTicket",
    "NotFound",
    "RecordMissing",
    "Reported",
    "TicketChange",
    "TicketFilter",
    "TicketService",
    "TransitionRefused",
]
