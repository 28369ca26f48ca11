"""Contractors' licences (§4.1.4): a routine ticket for the manager when one expires within 30 days."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from ground.severity import Severity
from records.db import Database
from records.models import Contractor, MaintenancePlan, Ticket
from tickets.lifecycle import Source
from tickets.service import NewTicket, TicketService

log = logging.getLogger(__name__)

WARN_AHEAD = timedelta(days=30)
# The site of a licence ticket when no plan names the contractor: no site id can take it.
ALL_SITES = "*"
WATCHER = "licence watch"  # who opens the tickets, in the audit trail


class TicketedAlready(Exception):
    """The contractor's ticket for this expiry date exists."""


class LicenceWatch:
    """Opens the ticket of a licence expiring soon, once per contractor and expiry date."""

    def __init__(
        self, db: Database, tickets: TicketService, clock: Callable[[], datetime], lock: threading.RLock
    ) -> None:
        self.db = db
        self.tickets = tickets
        self.clock = clock
        self._lock = lock

    def check(self) -> int:
        """Timer (daily, and at start-up): a ticket per licence expiring within 30 days; how many opened."""
        horizon = self.clock().date() + WARN_AHEAD
        with self.db.read() as s:
            due = s.scalars(
                select(Contractor.id).where(
                    Contractor.licence_expires <= horizon,
                    or_(
                        Contractor.expiry_ticket_for.is_(None),
                        Contractor.expiry_ticket_for != Contractor.licence_expires,
                    ),
                )
            ).all()
        opened = 0
        for contractor_id in due:
            try:
                opened += self.check_one(contractor_id)
            except Exception:
                log.exception("could not open the licence ticket of contractor %s", contractor_id)
        return opened

    def check_one(self, contractor_id: str) -> int:
        """The ticket of a contractor's licence expiring within 30 days, unless it has one; 1 if opened."""
        with self.db.read() as s:
            c = s.get(Contractor, contractor_id)
            if c is None or c.expiry_ticket_for == c.licence_expires:
                return 0
            if c.licence_expires > self.clock().date() + WARN_AHEAD:
                return 0
            sites = sorted(
                set(s.scalars(select(MaintenancePlan.site).where(MaintenancePlan.contractor_id == c.id)))
            )
        expires = c.licence_expires
        verb = "expired" if expires < self.clock().date() else "expires"
        new = NewTicket(
            site=sites[0] if sites else ALL_SITES,
            title=f"Licence of contractor {c.name} {verb} on {expires.isoformat()}"[:300],
            severity=Severity.ROUTINE,
            source=Source.MAINTENANCE,
            description=(
                f"For the manager: licence {c.licence_number} of {c.name} ({c.id}) {verb} on"
                f" {expires.isoformat()}; it covers {', '.join(c.equipment_types)}."
                f" Renew it or name another contractor on the plans of sites {', '.join(sites) or 'none'}."
            ),
        )

        def attach(s: Session, ticket: Ticket) -> None:
            row = s.get(Contractor, contractor_id, with_for_update=True)
            if row is None or row.expiry_ticket_for == expires or row.licence_expires != expires:
                raise TicketedAlready
            row.expiry_ticket_for = expires

        with self._lock:
            try:
                self.tickets.open_ticket(new, WATCHER, attach)
            except TicketedAlready:
                return 0
        return 1
