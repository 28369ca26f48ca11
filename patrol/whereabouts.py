"""An SOS from a patrol reader: the last checkpoint that reader scanned, put on the SOS's ticket."""

from __future__ import annotations

from sqlalchemy import select

from ground.clock import from_ms
from ground.contract import Kind, Message
from patrol.outcomes import READER, ReaderCode
from patrol.places import place_of
from records.db import Database
from records.models import PatrolCheckpoint, PatrolScan
from tickets.onsite import Whereabouts, note_whereabouts
from tickets.service import TicketService

SOS = "SOS"


def is_sos(m: Message) -> bool:
    """Whether a decoded message is a patrol reader's SOS."""
    return m.kind is Kind.EVENT and m.device_type == READER and m.body.get("code") == SOS


def last_scan(db: Database, site: str, reader: str, before_ms: int) -> Whereabouts | None:
    """The reader's last read of a known checkpoint (a scan or a finding) at or before its SOS."""
    with db.read() as s:
        row = s.execute(
            select(PatrolScan, PatrolCheckpoint)
            .join(PatrolCheckpoint, PatrolCheckpoint.id == PatrolScan.checkpoint_id)
            .where(
                PatrolScan.site == site,
                PatrolScan.reader == reader,
                PatrolScan.code.in_([c.value for c in ReaderCode]),
                PatrolScan.ts <= from_ms(before_ms),
            )
            .order_by(PatrolScan.ts.desc(), PatrolScan.id.desc())
            .limit(1)
        ).first()
    if row is None:
        return None
    scan, cp = row
    return Whereabouts(cp.id, cp.name, place_of(cp), scan.ts, scan.guard)


def locate(db: Database, tickets: TicketService, m: Message) -> bool:
    """Put where the SOS's guard was last seen on the reader's open ticket; whether anything was added.

    The rules engine opens the ticket first: the collector hands a batch to the pipeline before the
    patrols, and the patrols take the batch's scans in order, so a scan just before the SOS counts.
    """
    where = last_scan(db, m.site, m.device_id, m.ts)
    if where is None:
        return False
    ticket = tickets.open_for_device(m.site, m.device_id)
    if ticket is None:
        return False
    return note_whereabouts(tickets, ticket.id, where)
