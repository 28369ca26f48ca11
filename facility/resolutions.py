"""Tickets of a worker's sites resolved through any worker's API, heard from the records.

People may act on any site's ticket through any worker's API. A resolve clears the ticket's
latched alarms (instantaneous events such as an alarm button) in the engine that holds the
device, and ends or sets its timers, and both belong to the owning worker; the worker that took
the request has neither. So each worker reads the resolves of its own sites from the audit trail,
a few seconds late. Its own resolves come back this way too, which changes nothing: an alarm
cleared once stays cleared, and the timers are set from the ticket's record.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import func, select

from ground.severity import Severity
from records.db import Database
from records.models import AuditEntry, Ticket
from records.states import Status
from tickets.changes import ChangeKind, TicketChange
from tickets.lifecycle import Action

log = logging.getLogger(__name__)

# Audit ids come from a sequence before their transaction commits, so a lower id may appear after
# a higher one: this many ids behind the highest seen are read again.
LOOK_BACK_IDS = 1000
RESOLVES = (Action.RESOLVE.value,)
_DONE = (Status.RESOLVED.value, Status.CLOSED.value)


class Resolutions:
    """Reads the resolves of these sites' tickets since the last look and hands each to `on_resolved`."""

    def __init__(
        self, db: Database, sites: frozenset[str], on_resolved: Callable[[TicketChange], None]
    ) -> None:
        self.db = db
        self.sites = sorted(sites)
        self.on_resolved = on_resolved
        self._highest: int | None = None
        self._seen: set[int] = set()

    def poll(self) -> int:
        """Timer: hand on each resolve not seen yet whose ticket is still resolved; returns how many."""
        with self.db.read() as s:
            if self._highest is None:
                # At start-up, the latest resolves too: some may have come while this worker was down.
                self._highest = s.scalar(select(func.max(AuditEntry.id))) or 0
            q = (
                select(AuditEntry.id, Ticket)
                .join(Ticket, Ticket.id == AuditEntry.ticket_id)
                .where(
                    AuditEntry.id > self._highest - LOOK_BACK_IDS,
                    AuditEntry.action.in_(RESOLVES),
                    Ticket.site.in_(self.sites),
                    Ticket.device_id.is_not(None),
                )
                .order_by(AuditEntry.id)
            )
            rows = [(entry_id, ticket) for entry_id, ticket in s.execute(q) if entry_id not in self._seen]
            changes = [
                TicketChange(
                    ticket.id,
                    ChangeKind.RESOLVED,
                    Severity(ticket.severity),
                    ticket.site,
                    ticket.device_id,
                    ticket.title,
                )
                for _, ticket in rows
                # Reopened since (the fault came back): its alarms are live again, not to be cleared.
                if ticket.status in _DONE
            ]
        for entry_id, _ in rows:
            self._seen.add(entry_id)
            self._highest = max(self._highest, entry_id)
        self._seen = {entry_id for entry_id in self._seen if entry_id > self._highest - LOOK_BACK_IDS}
        for change in changes:
            try:
                self.on_resolved(change)
            except Exception:
                log.exception("could not clear the latched alarms of ticket %d", change.ticket_id)
        return len(changes)
