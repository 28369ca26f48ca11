"""The demo's people: occupants who report faults now and then, and engineers who work the tickets.

Without them the demo's tickets would all stay open, and its monthly quality report would have no
times to acknowledge or resolve, no cause classes and no satisfaction. Each ticket's pace follows
from its id, so a run is repeatable; every seventh is left alone, to show what overdue looks like.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from ground.severity import Severity
from records.models import Ticket
from records.states import CauseClass, Source, Status
from tickets.lifecycle import Action, RecordMissing, TransitionRefused
from tickets.service import ActionFields, NewTicket, TicketFilter, TicketService

log = logging.getLogger(__name__)
ENGINEER = "demo-engineer"
FRONT_DESK = "demo-front-desk"
REPORTS = (
    "Corridor light flickering, 5F",
    "Water dripping from the lobby ceiling",
    "Lift door slow to close",
    "走廊燈不亮",
    "地下室有積水",
)
# Most faults are the equipment's; a few the way work was done, the staff's, or from outside.
CAUSES = [CauseClass.EQUIPMENT] * 5 + [CauseClass.PROCESS, CauseClass.STAFF, CauseClass.EXTERNAL]
SCORES = (5, 5, 4, 4, 4, 3, 2)


@dataclass
class DemoStaff:
    """Works the demo's tickets at a human pace, one step per call."""

    tickets: TicketService
    sites: list[str]
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    report_every: timedelta = timedelta(minutes=3)
    _next_report: datetime | None = None

    def step(self, now: datetime | None = None) -> int:
        """File a report when one is due and take the actions now due; how many actions were taken."""
        now = now or datetime.now(UTC)
        if self.sites and (self._next_report is None or now >= self._next_report):
            self._report()
            self._next_report = now + self.report_every
        taken = 0
        for ticket in self.tickets.list(TicketFilter(limit=500)):
            if ticket.source == Source.MAINTENANCE or ticket.status == Status.CLOSED or ticket.id % 7 == 0:
                continue
            action, fields = self._next(ticket, now)
            if action is None:
                continue
            try:
                self.tickets.act(ticket.id, action, fields, ENGINEER)
                taken += 1
            except (TransitionRefused, RecordMissing) as exc:
                log.debug("demo staff: ticket %d: %s", ticket.id, exc)
        return taken

    def _report(self) -> None:
        site = self.rng.choice(self.sites)
        title = self.rng.choice(REPORTS)
        self.tickets.open_ticket(
            NewTicket(site=site, title=title, source=Source.OCCUPANT, reporter="Demo occupant"), FRONT_DESK
        )

    def _next(self, ticket: Ticket, now: datetime) -> tuple[Action | None, ActionFields]:
        """The ticket's next step if its time has come: a minute or few to acknowledge, minutes to fix."""
        age = (now - ticket.opened_at).total_seconds()
        pace = random.Random(ticket.id)
        if ticket.status == Status.OPEN and age >= pace.uniform(20, 120):
            return Action.ACKNOWLEDGE, ActionFields()
        if ticket.status == Status.ACKNOWLEDGED:
            return Action.START, ActionFields(assignee=ENGINEER)
        if ticket.status == Status.IN_PROGRESS and age >= pace.uniform(120, 600):
            severity = Severity(ticket.severity)
            return Action.RESOLVE, ActionFields(
                cause="Found on site",
                measures="Repaired and tested",
                result="Back in service",
                emergency_plan_started=severity >= Severity.MAJOR or None,
                leadership_informed=severity >= Severity.MAJOR or None,
                temporary_measures="Area cordoned off" if severity is Severity.EMERGENCY else None,
                cause_class=pace.choice(CAUSES),
            )
        if (
            ticket.status == Status.RESOLVED
            and ticket.resolved_at
            and now - ticket.resolved_at > timedelta(minutes=1)
        ):
            if ticket.source == Source.OCCUPANT:
                return Action.CLOSE, ActionFields(followup="Called back", satisfaction=pace.choice(SCORES))
            return Action.CLOSE, ActionFields()
        return None, ActionFields()
