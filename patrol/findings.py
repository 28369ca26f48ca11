"""A guard's finding becomes a ticket of its own, or corroborates the named device's open one."""

from __future__ import annotations

from dataclasses import dataclass

from ground.severity import Severity
from patrol.outcomes import ReaderEvent
from tickets.lifecycle import Source
from tickets.service import NewTicket, TicketService


@dataclass(frozen=True)
class Finding:
    """What a guard reported at a checkpoint, and where it was."""

    event: ReaderEvent
    checkpoint_id: str | None  # the tag's checkpoint, if the site knows the tag
    location: str | None  # the checkpoint's
    round_id: int | None  # the guard's round whose window holds it

    @property
    def text(self) -> str:
        """What the guard wrote."""
        return str(self.event.detail.get("text") or "finding without text")

    @property
    def reporter(self) -> str:
        """Who reported it: the guard, or the reader when the guard is not named."""
        return str(self.event.detail.get("guard") or self.event.reader)

    @property
    def device_id(self) -> str | None:
        """The device the finding names, if any."""
        named = self.event.detail.get("device_id")
        return named if isinstance(named, str) and named else None


def file_finding(tickets: TicketService, finding: Finding) -> None:
    """Corroborate the named device's open ticket, or open a routine ticket with source `patrol`."""
    event, checkpoint_id = finding.event, finding.checkpoint_id
    at = event.at.isoformat()
    if finding.device_id is not None:
        open_ticket = tickets.open_for_device(event.site, finding.device_id)
        if open_ticket is not None:
            tickets.corroborate(
                open_ticket.id,
                finding.reporter,
                {
                    "text": finding.text,
                    "checkpoint": checkpoint_id,
                    "round": finding.round_id,
                    "reader": event.reader,
                    "at": at,
                },
            )
            return
    where = f" at {checkpoint_id}" if checkpoint_id else ""
    reported = f"Reported by {finding.reporter}{where} at {at} (reader {event.reader})."
    tickets.open_ticket(
        NewTicket(
            site=event.site,
            title=f"Patrol finding: {finding.text}"[:300],
            severity=Severity.ROUTINE,
            source=Source.PATROL,
            description=f"{finding.text}\n{reported}",
            device_id=finding.device_id,
            location=finding.location,
            reporter=finding.reporter,
            patrol_round_id=finding.round_id,
        ),
        finding.reporter,
    )
