"""Which open ticket a second report of the same fault joins: an occupant's report or a device's alarm."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from records.models import Ticket
from tickets.lifecycle import Source
from tickets.store import OPEN_STATUSES

_OPEN = [st.value for st in OPEN_STATUSES]


def report_for_alarm(s: Session, site: str, device_id: str, key: str) -> Ticket | None:
    """The device's open occupant's report with no alarm yet, claimed for the device's alarms (`key`).

    Locked (PostgreSQL), and the key is unique: a second worker claiming it at the same time fails
    its flush and reads the claimed ticket on its next try.
    """
    ticket = s.scalars(
        select(Ticket)
        .where(
            Ticket.site == site,
            Ticket.device_id == device_id,
            Ticket.source == Source.OCCUPANT.value,
            Ticket.alarm_key.is_(None),
            Ticket.status.in_(_OPEN),
        )
        .order_by(Ticket.id.desc())
        .limit(1)
        .with_for_update()
    ).one_or_none()
    if ticket is not None:
        ticket.alarm_key = key
        s.flush()
    return ticket


def ticket_for_report(s: Session, site: str, device_id: str | None, location: str | None) -> Ticket | None:
    """The open ticket an occupant's report joins: its device's, or else one at the very same place.

    A place is matched as written, ignoring case and surrounding blanks; a report naming a device
    joins only that device's ticket. Planned work is no fault: a report never joins it.
    """
    q = select(Ticket).where(
        Ticket.site == site, Ticket.status.in_(_OPEN), Ticket.source != Source.MAINTENANCE.value
    )
    if device_id is not None:
        q = q.where(Ticket.device_id == device_id)
    elif location and location.strip():
        q = q.where(func.lower(func.trim(Ticket.location)) == location.strip().lower())
    else:
        return None
    return s.scalars(q.order_by(Ticket.id.desc()).limit(1).with_for_update()).one_or_none()
