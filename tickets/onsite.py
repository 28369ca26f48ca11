"""What guards on site add to a ticket: where an SOS came from, and an alarm's place looked at."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from records.models import AuditEntry, Ticket
from tickets.store import SYSTEM, TicketStore

NOTHING_FOUND = "checked, nothing found"  # a verify stop's scan without a finding


@dataclass(frozen=True)
class Whereabouts:
    """The last checkpoint a patrol reader scanned: where its guard was last known to be."""

    checkpoint_id: str
    name: str
    place: str | None  # the checkpoint's building, floor and location, as people read them
    scanned_at: datetime  # by the reader's clock
    guard: str | None

    def line(self) -> str:
        """The ticket's description line: "Last scan: B2 ramp (cp-b2-03), Tower A, floor B2, ramp, at …"."""
        where = f", {self.place}" if self.place else ""
        by = f" by {self.guard}" if self.guard else ""
        at = f"{self.scanned_at:%Y-%m-%d %H:%M:%S} UTC"
        return f"Last scan: {self.name} ({self.checkpoint_id}){where}, at {at}{by}"

    def detail(self) -> dict[str, Any]:
        """The audit entry's detail."""
        return {
            "checkpoint": self.checkpoint_id,
            "name": self.name,
            "location": self.place,
            "scanned_at": self.scanned_at.isoformat(),
            "guard": self.guard,
        }


def note_whereabouts(store: TicketStore, ticket_id: int, where: Whereabouts) -> bool:
    """Put the guard's last known place on an SOS ticket (location, description, audit); False if known."""
    with store.db.session() as s:
        ticket = s.get(Ticket, ticket_id)
        if ticket is None:
            return False
        line = where.line()
        lines = (ticket.description or "").splitlines()
        if line in lines:
            return False  # the same SOS again (a replay): already said
        ticket.description = "\n".join([*lines, line])
        # Where the guard is matters more to a responder than where the reader is registered.
        ticket.location = f"{where.name}, {where.place}" if where.place else where.name
        s.add(
            AuditEntry(
                ticket_id=ticket.id,
                at=store.clock(),
                actor=SYSTEM,
                action="whereabouts",
                detail=where.detail(),
            )
        )
        return True


def note_verified(store: TicketStore, s: Session, ticket_id: int, actor: str, detail: dict[str, Any]) -> None:
    """Add a guard's look at an alarm's place to its ticket's audit trail, in the caller's session."""
    s.add(AuditEntry(ticket_id=ticket_id, at=store.clock(), actor=actor, action="verified", detail=detail))
