"""Notifications: the outbox (what was sent, what waits, what was given up) and who is told."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status

from accounts.users import UserBook, UserMissing
from api.auth import Caller, Role, allow
from api.notification_schemas import (
    NotificationPublic,
    RecipientsDocument,
    notification_public,
)
from api.schemas import MAX_ID
from records.states import Delivery
from tickets.outbox import Outbox
from tickets.recipientsfile import RecipientsError, RecipientsFile, document

router = APIRouter(prefix="/notifications", tags=["notifications"])
Admin = Annotated[Caller, Depends(allow())]
Reader = Annotated[Caller, Depends(allow(Role.MANAGER))]


def _outbox(request: Request) -> Outbox:
    outbox: Outbox = request.app.state.outbox
    return outbox


def _recipients(request: Request) -> RecipientsFile:
    recipients: RecipientsFile = request.app.state.recipients
    return recipients


@router.get("", response_model=list[NotificationPublic])
def list_notifications(
    request: Request,
    caller: Reader,
    state: Annotated[Delivery | None, Query(description="pending, delivered or failed (given up)")] = None,
    ticket_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[NotificationPublic]:
    """Notifications of the caller's sites, newest first."""
    rows = _outbox(request).list(state=state, ticket_id=ticket_id, sites=caller.sites, limit=limit)
    return [notification_public(row) for row in rows]


@router.get("/recipients", response_model=RecipientsDocument, response_model_exclude_none=True)
def get_recipients(request: Request, _caller: Admin) -> RecipientsDocument:
    """Who is told of tickets, per site and duty (the recipients file)."""
    return RecipientsDocument.model_validate(document(_recipients(request).book()))


@router.put("/recipients", response_model=RecipientsDocument, response_model_exclude_none=True)
def put_recipients(body: RecipientsDocument, request: Request, _caller: Admin) -> RecipientsDocument:
    """Replace who is told of tickets; the recipients file is written, and used from the next notification."""
    doc = body.as_document()
    _known_users(request.app.state.users, body)
    try:
        book = _recipients(request).replace(doc)
    except RecipientsError as exc:
        detail = [{"loc": ["body"], "msg": problem, "type": "value_error"} for problem in exc.problems]
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail) from None
    return RecipientsDocument.model_validate(document(book))


def _known_users(users: UserBook, body: RecipientsDocument) -> None:
    """A recipient's user name must be an account's: a misspelt one would name nobody."""
    detail = []
    for site, duties in body.sites.items():
        for duty in ("duty_engineer", "duty_manager", "leadership"):
            for n, recipient in enumerate(getattr(duties, duty) or []):
                if recipient.user is None:
                    continue
                try:
                    users.get(recipient.user)
                except UserMissing:
                    loc = ["body", "sites", site, duty, n, "user"]
                    detail.append({"loc": loc, "msg": f"no user {recipient.user!r}", "type": "value_error"})
    if detail:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail)
