"""Request and response shapes of the notifications API: the outbox and the recipients."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from api.schemas import Input
from records.models import Notification
from records.states import Delivery


class NotificationPublic(BaseModel):
    """One notification to one recipient, and how its delivery stands."""

    id: int
    ticket_id: int
    idempotency_key: str
    reason: str
    recipient: str
    role: str = Field(description="duty_engineer, duty_manager, leadership, or webhook (the catch-all)")
    url: str
    state: Delivery
    created_at: datetime
    attempts: int
    next_attempt_at: datetime | None = Field(description="when it is tried again; null once settled")
    last_error: str | None
    delivered_at: datetime | None
    given_up_at: datetime | None
    payload: dict[str, Any]


def notification_public(row: Notification) -> NotificationPublic:
    """The public shape of a notification."""
    return NotificationPublic(
        id=row.id,
        ticket_id=row.ticket_id,
        idempotency_key=row.idempotency_key,
        reason=row.reason,
        recipient=row.recipient,
        role=row.role,
        url=row.url,
        state=row.state,
        created_at=row.created_at,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at if row.state is Delivery.PENDING else None,
        last_error=row.last_error,
        delivered_at=row.delivered_at,
        given_up_at=row.given_up_at,
        payload=row.payload,
    )


class RecipientModel(Input):
    """Someone to tell: a name, their webhook, and optionally their user name in the accounts."""

    name: str = Field(min_length=1, max_length=200)
    url: str = Field(min_length=1, max_length=2000, description="an http(s):// webhook")
    user: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")


class SiteRecipients(Input):
    """A site's (or every site's, `*`) duties; a duty a site leaves out is `*`'s."""

    duty_engineer: list[RecipientModel] | None = None
    duty_manager: list[RecipientModel] | None = None
    leadership: list[RecipientModel] | None = None


class RecipientsDocument(Input):
    """The recipients file as JSON: per site id or `*`, who holds each duty."""

    version: int = Field(description="1")
    sites: dict[str, SiteRecipients]

    def as_document(self) -> dict[str, Any]:
        """The document as the file holds it (duties left out stay out)."""
        return self.model_dump(exclude_none=True)
