"""Tickets: list, read with the audit trail, report a fault, and act on a ticket."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, status

from api.auth import ANYONE, STAFF, Caller, allow
from api.errors import problem
from api.schemas import MAX_ID, SITE_OR_DEVICE, ActionBody, TicketCreate, TicketPublic, ticket_public
from ground.severity import Severity
from tickets.lifecycle import Action, RecordMissing, Source, Status, TransitionRefused
from tickets.service import ActionFields, NewTicket, NotFound, TicketFilter, TicketService

router = APIRouter(prefix="/tickets", tags=["tickets"])


async def _service(request: Request) -> TicketService:
    service: TicketService = request.app.state.tickets
    return service


Service = Annotated[TicketService, Depends(_service)]
TicketId = Annotated[int, Path(ge=1, le=MAX_ID)]


@router.get("", response_model=list[TicketPublic], response_model_by_alias=True)
def list_tickets(
    service: Service,
    _caller: Annotated[Caller, Depends(allow(*ANYONE))],
    status_: Annotated[Status | None, Query(alias="status")] = None,
    severity: Annotated[Severity | None, Query(alias="class")] = None,
    site: Annotated[str | None, Query(pattern=SITE_OR_DEVICE)] = None,
    device_id: Annotated[str | None, Query(pattern=SITE_OR_DEVICE)] = None,
    source: Source | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> list[TicketPublic]:
    """Tickets, newest first, filtered by status, class, site, device and source."""
    found = service.list(TicketFilter(status_, severity, site, device_id, source, limit, offset))
    return [ticket_public(t) for t in found]


@router.post("", response_model=TicketPublic, status_code=status.HTTP_201_CREATED)
def report(
    body: TicketCreate, service: Service, caller: Annotated[Caller, Depends(allow(*ANYONE))]
) -> TicketPublic:
    """Open a ticket for a fault an occupant reported (§4.2.1), or for planned work."""
    new = NewTicket(
        site=body.site,
        title=body.title or "",
        severity=body.severity,
        source=Source(body.source),
        description=body.description,
        device_id=body.device_id,
        location=body.location,
        reporter=body.reporter,
    )
    return ticket_public(service.open_ticket(new, caller.name), with_audit=True)


@router.get("/{ticket_id}", response_model=TicketPublic)
def get_ticket(
    ticket_id: TicketId, service: Service, _caller: Annotated[Caller, Depends(allow(*ANYONE))]
) -> TicketPublic:
    """One ticket with its audit trail."""
    try:
        return ticket_public(service.get(ticket_id), with_audit=True)
    except NotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None


@router.post(
    "/{ticket_id}/{action}",
    response_model=TicketPublic,
    responses={409: problem("not an action the ticket's status allows, or a record it needs first")},
)
def act(
    ticket_id: TicketId,
    action: Action,
    service: Service,
    caller: Annotated[Caller, Depends(allow(*STAFF))],
    body: ActionBody | None = None,
) -> TicketPublic:
    """Acknowledge, assign, start, resolve, close or reopen; an illegal transition answers 409."""
    fields = ActionFields(**(body or ActionBody()).model_dump())
    try:
        return ticket_public(service.act(ticket_id, action, fields, caller.name), with_audit=True)
    except NotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except TransitionRefused as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    except RecordMissing as exc:
        detail = [{"loc": ["body", f], "msg": str(exc), "type": "missing"} for f in exc.fields]
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail) from None
