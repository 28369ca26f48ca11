"""The demo's staff work tickets to closed, so the demo's quality report has times, causes and scores."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from facility.demo_staff import DemoStaff
from records.db import Database
from records.states import Source, Status
from tickets.service import NewTicket, TicketFilter, TicketService


def test_the_demo_staff_report_and_work_tickets_to_closed(db: Database) -> None:
    now = [datetime(2026, 11, 3, 9, 0, tzinfo=UTC)]
    tickets = TicketService(db, clock=lambda: now[0])
    staff = DemoStaff(tickets, ["s1"])
    for title in ("a", "b", "c", "d", "e", "f", "g"):
        tickets.open_ticket(NewTicket(site="s1", title=title, source=Source.OCCUPANT), "desk")
    for _ in range(40):
        now[0] += timedelta(minutes=1)
        staff.step(now[0])
    found = tickets.list(TicketFilter(limit=100))
    assert any(t.source == Source.OCCUPANT and t.reporter == "Demo occupant" for t in found)
    closed = [t for t in found if t.status == Status.CLOSED]
    assert len(closed) >= 6
    assert all(t.cause_class is not None and t.satisfaction in range(1, 6) for t in closed)
    # Every seventh is left alone: something overdue to show.
    assert tickets.get(7).status == Status.OPEN
