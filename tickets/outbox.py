"""The outbox: notifications written in the transaction of the ticket change they tell of, kept until sent.

A change that tells people (opened, reopened, class raised, re-notified, escalated) adds a row per
recipient in the same transaction as the change itself, so a ticket never exists without its
notifications, and a crash right after the commit loses none. The courier (`tickets/courier.py`)
claims due rows, sends them and settles them: delivered, due again after a backoff, or given up.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ground.clock import utcnow
from records.db import Database
from records.models import Notification, Ticket
from records.states import Delivery
from tickets.changes import ChangeKind, TicketChange
from tickets.recipients import RecipientBook

# The changes people are told of, with the reason their notification gives.
REASONS = {
    ChangeKind.OPENED: "opened",
    ChangeKind.REOPENED: "reopened",
    ChangeKind.CLASS_RAISED: "class_raised",
    ChangeKind.RENOTIFIED: "re-notify",
    ChangeKind.ESCALATED: "escalated",
    ChangeKind.OVERDUE: "overdue",
}


class Claimed(NamedTuple):
    """A notification a courier holds for one attempt."""

    id: int
    url: str
    idempotency_key: str
    payload: dict[str, Any]
    attempts: int  # counting this one
    created_at: datetime


def backoff_s(attempts: int, first_s: float, most_s: float) -> float:
    """The wait after the `attempts`-th failed attempt: first_s, doubling, at most most_s."""
    return float(min(most_s, first_s * 2 ** min(max(attempts - 1, 0), 40)))


@dataclass
class Outbox:
    """Writes notifications with their ticket's change; claims, settles and reports them."""

    db: Database
    book: Callable[[], RecipientBook]
    catch_all: str | None = None  # FACILITY_WEBHOOK_URL
    clock: Callable[[], datetime] = utcnow

    def write(self, s: Session, ticket: Ticket, change: TicketChange) -> None:
        """In the change's own transaction: a row per recipient the ticket's class and escalation reach."""
        reason = REASONS.get(change.kind)
        if reason is None:
            return
        now = self.clock()
        for addressee in self.book().addressees(
            change.site, change.severity, ticket.escalation_level, self.catch_all
        ):
            key = uuid.uuid4().hex
            recipient = addressee.recipient
            payload = {
                "idempotency_key": key,
                "reason": reason,
                "at": now.isoformat(),
                "ticket_id": change.ticket_id,
                "kind": change.kind.value,
                "class": change.severity.value,
                "site": change.site,
                "device_id": change.device_id,
                "title": change.title,
                "source": change.source,
                "opened_at": _iso(change.opened_at),
                "acknowledged_at": _iso(change.acknowledged_at),
                "resolved_at": _iso(change.resolved_at),
                "escalation_level": ticket.escalation_level,
                "recipient": {"name": recipient.name, "role": addressee.role, "user": recipient.user},
            }
            s.add(
                Notification(
                    ticket_id=change.ticket_id,
                    idempotency_key=key,
                    reason=reason,
                    recipient=recipient.name,
                    role=addressee.role,
                    url=recipient.url,
                    payload=payload,
                    state=Delivery.PENDING,
                    created_at=now,
                    attempts=0,
                    next_attempt_at=now,
                )
            )

    def claim(self, limit: int, lease_s: float) -> list[Claimed]:
        """Take up to `limit` due notifications for one attempt each, for `lease_s` (then due again).

        `FOR UPDATE SKIP LOCKED`: two couriers on PostgreSQL never take the same row; SQLite has
        one writer, and one courier per records file.
        """
        now = self.clock()
        q = (
            select(Notification)
            .where(Notification.state == Delivery.PENDING, Notification.next_attempt_at <= now)
            .order_by(Notification.next_attempt_at, Notification.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        with self.db.session() as s:
            taken = []
            for row in s.scalars(q):
                row.attempts += 1
                row.next_attempt_at = now + timedelta(seconds=lease_s)
                taken.append(
                    Claimed(row.id, row.url, row.idempotency_key, row.payload, row.attempts, row.created_at)
                )
            return taken

    def delivered(self, claimed: Claimed) -> None:
        """It arrived."""
        with self.db.session() as s:
            row = s.get(Notification, claimed.id, with_for_update=True)
            if row is not None and row.state is not Delivery.DELIVERED:
                row.state, row.delivered_at = Delivery.DELIVERED, self.clock()

    def failed(self, claimed: Claimed, error: str, wait_s: float, give_up_s: float) -> bool:
        """It did not arrive: due again after `wait_s`, or given up after `give_up_s`; True when given up."""
        now = self.clock()
        with self.db.session() as s:
            row = s.get(Notification, claimed.id, with_for_update=True)
            # Another courier took it again after the lease, or it arrived: theirs to settle.
            if row is None or row.state is not Delivery.PENDING or row.attempts != claimed.attempts:
                return False
            row.last_error = error[:2000]
            if (now - row.created_at).total_seconds() >= give_up_s:
                row.state, row.given_up_at = Delivery.FAILED, now
                return True
            row.next_attempt_at = now + timedelta(seconds=wait_s)
            return False

    def release(self, claimed: Sequence[Claimed]) -> None:
        """Give back notifications claimed but not tried: due at once, the attempt not counted."""
        with self.db.session() as s:
            for item in claimed:
                row = s.get(Notification, item.id, with_for_update=True)
                if row is not None and row.state is Delivery.PENDING and row.attempts == item.attempts:
                    row.attempts -= 1
                    row.next_attempt_at = self.clock()

    def next_due(self) -> datetime | None:
        """When the next pending notification is due."""
        q = select(func.min(Notification.next_attempt_at)).where(Notification.state == Delivery.PENDING)
        with self.db.read() as s:
            return s.scalar(q)

    def counts(self) -> dict[Delivery, int]:
        """How many notifications are in each state."""
        q = select(Notification.state, func.count()).group_by(Notification.state)
        with self.db.read() as s:
            found = {Delivery(state): n for state, n in s.execute(q)}
        return {state: found.get(state, 0) for state in Delivery}

    def oldest_pending(self) -> datetime | None:
        """When the oldest notification still waiting was written."""
        q = select(func.min(Notification.created_at)).where(Notification.state == Delivery.PENDING)
        with self.db.read() as s:
            return s.scalar(q)

    def list(
        self,
        state: Delivery | None = None,
        ticket_id: int | None = None,
        sites: frozenset[str] | None = None,
        limit: int = 100,
    ) -> list[Notification]:
        """Notifications, newest first; of one state, one ticket, these sites, when given."""
        q = select(Notification)
        if state is not None:
            q = q.where(Notification.state == state)
        if ticket_id is not None:
            q = q.where(Notification.ticket_id == ticket_id)
        if sites is not None:
            q = q.join(Ticket, Ticket.id == Notification.ticket_id).where(Ticket.site.in_(sorted(sites)))
        with self.db.read() as s:
            return list(s.scalars(q.order_by(Notification.id.desc()).limit(limit)))


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
