"""Occupants' reports (§4.2.1): one about a device or place that already has an open ticket joins it."""

from __future__ import annotations

from typing import NamedTuple

from ground.severity import Severity
from records.models import Ticket
from tickets.actions import NewTicket, PeopleActions
from tickets.alarms import AlarmIntake
from tickets.changes import ChangeKind, TicketChange
from tickets.joins import ticket_for_report
from tickets.lifecycle import Source


class Reported(NamedTuple):
    """The ticket a report is on, and whether it joined one already open (rather than opened it)."""

    ticket: Ticket
    joined: bool


class ReportIntake(AlarmIntake, PeopleActions):
    """Takes occupants' reports: a second report of an open fault is an occurrence of its ticket."""

    def report(self, new: NewTicket, actor: str) -> Reported:
        """Join the open ticket of the report's device or place, or open a ticket for it."""
        if new.source is not Source.OCCUPANT:
            return Reported(self.open_ticket(new, actor), False)
        words = new.description or new.title
        changes: list[TicketChange] = []
        with self.db.session() as s:
            ticket = ticket_for_report(s, new.site, new.device_id, new.location)
            if ticket is not None:
                ticket.occurrences += 1
                ticket.last_occurrence_at = self.clock()
                detail = {"source": Source.OCCUPANT.value, "reporter": new.reporter, "contact": new.contact}
                self._audit(s, ticket, actor, "occurrence", {**detail, "words": words})
                if new.severity > Severity(ticket.severity):
                    self._raise_class(s, ticket, new.severity, None, changes)
                else:
                    changes.append(self._change(ticket, ChangeKind.RECURRED))
        if ticket is None:
            return Reported(self.open_ticket(new, actor), False)
        self._tell(changes)
        return Reported(self.get(ticket.id), True)
