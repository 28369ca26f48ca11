"""The records a period's figures are counted from, read from the database for some sites or all."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, func, select
from sqlalchemy.orm import selectinload

from quality.period import Period
from quality.rows import AlarmRow, TicketRow
from records.db import Database
from records.models import Alarm, Device, PatrolRound, Ticket, WorkOrder
from records.states import Status
from tickets.store import OPEN_STATUSES


class QualityRecords:
    """Reads a period's tickets, alarms, rounds, work orders and device counts."""

    def __init__(
        self, db: Database, zone: ZoneInfo, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self.db = db
        self.zone = zone
        self.clock = clock

    def period(self, sites: frozenset[str] | None, since: datetime, until: datetime) -> Period:
        """The records of [since, until) of some sites (None: every site), tickets judged at now."""
        now = self.clock()

        def within(q: Select[Any], site: Any, at: Any, row_id: Any) -> Select[Any]:
            """Rows of the sites whose time `at` falls in the period, oldest first."""
            if sites is not None:
                q = q.where(site.in_(sorted(sites)))
            return q.where(at >= since, at < until).order_by(at, row_id)

        with self.db.read() as s:
            tickets = s.scalars(within(select(Ticket), Ticket.site, Ticket.opened_at, Ticket.id)).all()
            alarms = s.scalars(within(select(Alarm), Alarm.site, Alarm.raised_at, Alarm.id)).all()
            with_visits = select(PatrolRound).options(selectinload(PatrolRound.visits))
            rounds = s.scalars(within(with_visits, PatrolRound.site, PatrolRound.start, PatrolRound.id)).all()
            orders = s.scalars(
                within(select(WorkOrder), WorkOrder.site, WorkOrder.due_at, WorkOrder.id)
            ).all()
            per_type = select(Device.device_type, func.count()).group_by(Device.device_type)
            if sites is not None:
                per_type = per_type.where(Device.site.in_(sorted(sites)))
            devices = s.execute(per_type).all()
        return Period(
            since=since,
            until=until,
            zone=self.zone,
            tickets=[TicketRow.of(t, now, self.zone) for t in tickets],
            alarms=[AlarmRow.of(a) for a in alarms],
            rounds=list(rounds),
            work_orders=list(orders),
            devices_by_type={kind: n for kind, n in devices},
        )

    def overdue(self, sites: frozenset[str] | None) -> list[TicketRow]:
        """Tickets overdue now (response or resolve target), whenever they were opened, most overdue first."""
        now = self.clock()
        late_response = (Ticket.status == Status.OPEN) & (Ticket.response_due < now)
        late_resolve = Ticket.status.in_(OPEN_STATUSES) & (Ticket.resolve_due < now)
        q = select(Ticket).where(late_response | late_resolve)
        if sites is not None:
            q = q.where(Ticket.site.in_(sorted(sites)))
        with self.db.read() as s:
            found = s.scalars(q.order_by(Ticket.response_due, Ticket.id)).all()
        return [TicketRow.of(t, now, self.zone) for t in found]
