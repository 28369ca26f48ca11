"""Tickets: list, read with the audit trail, report a fault, and act on a ticket."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response, status

from api.auth import ANYONE, STAFF, Caller, Role, allow
from api.errors import problem
from api.schemas import (
    MAX_ID,
    SITE_OR_DEVICE,
    ActionBody,
    ReportPublic,
    TicketCreate,
    TicketPublic,
    ticket_public,
)
from api.sites import mine_or_403
from ground.severity import Severity
from records.models import Ticket
from tickets.lifecycle import Action, RecordMissing, Source, Status, TransitionRefused
from tickets.service import ActionFields, NewTicket, NotFound, TicketFilter, TicketService

router = APIRouter(prefix="/tickets", tags=["tickets"])


async def _service(request: Request) -> TicketService:
    service: TicketService = request.app.state.tickets
    return service


Service = Annotated[TicketService, Depends(_service)]
TicketId = Annotated[int, Path(ge=1, le=MAX_ID)]
# The front desk records occupants' reports and follows them: those tickets only.
Reader = Annotated[Caller, Depends(allow(*ANYONE, Role.FRONT_DESK))]


def visible(caller: Caller, ticket: Ticket) -> bool:
    """Whether the caller may see this ticket: one of their sites, and an occupant's for the front desk."""
    if caller.role is Role.FRONT_DESK and ticket.source is not Source.OCCUPANT:
        return False
    return caller.sees(ticket.site)


def visible_ticket(service: TicketService, ticket_id: int, caller: Caller) -> Ticket:
    """The ticket, or 404 when it is missing or not the caller's to see."""
    try:
        ticket = service.get(ticket_id)
    except NotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    if not visible(caller, ticket):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no ticket {ticket_id}")
    return ticket


@router.get("", response_model=list[TicketPublic], response_model_by_alias=True)
def list_tickets(
    service: Service,
    caller: Reader,
    status_: Annotated[Status | None, Query(alias="status")] = None,
    severity: Annotated[Severity | None, Query(alias="class")] = None,
    site: Annotated[str | None, Query(pattern=SITE_OR_DEVICE)] = None,
    device_id: Annotated[str | None, Query(pattern=SITE_OR_DEVICE)] = None,
    source: Source | None = None,
    overdue: Annotated[
        bool,
        Query(
            description="only tickets open past their response due or unresolved past their resolve target"
        ),
    ] = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> list[TicketPublic]:
    """Tickets of the caller's sites, newest first, filtered by status, class, site, device and source."""
    if caller.role is Role.FRONT_DESK:
        if source not in (None, Source.OCCUPANT):
            return []
        source = Source.OCCUPANT
    sites = caller.visible(site)
    wanted = TicketFilter(status_, severity, site, device_id, source, limit, offset, sites, overdue)
    return [ticket_public(t) for t in service.list(wanted)]


@router.post(
    "",
    response_model=ReportPublic,
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {
            "model": ReportPublic,
            "description": "the report joined the open ticket of its device or place",
        },
        403: problem("not one of the caller's sites, or the front desk opening other than a report"),
    },
)
def report(body: TicketCreate, service: Service, caller: Reader, response: Response) -> ReportPublic:
    """Open a ticket for a fault an occupant reported (§4.2.1), or for planned work.

    A report about a device or place that has an open ticket joins it as an occurrence (with the
    reporter's words and contact) and answers 200 with that ticket, `joined` true.
    """
    mine_or_403(caller, body.site)
    if caller.role is Role.FRONT_DESK and body.source != Source.OCCUPANT.value:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the front desk opens occupants' reports only")
    new = NewTicket(
        site=body.site,
        title=body.title or "",
        severity=body.severity,
        source=Source(body.source),
        description=body.description,
        device_id=body.device_id,
        location=body.location,
        reporter=body.reporter,
        contact=body.contact,
    )
    ticket, joined = service.report(new, caller.name)
    if joined:
        response.status_code = status.HTTP_200_OK
    # The front desk sees an alarm's ticket its report joined, but not that ticket's trail.
    public = ticket_public(ticket, with_audit=visible(caller, ticket))
    return ReportPublic(**public.model_dump(), joined=joined)


@router.get("/{ticket_id}", response_model=TicketPublic)
def get_ticket(ticket_id: TicketId, service: Service, caller: Reader) -> TicketPublic:
    """One ticket with its audit trail."""
    return ticket_public(visible_ticket(service, ticket_id, caller), with_audit=True)


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
    visible_ticket(service, ticket_id, caller)
    try:
        return ticket_public(service.act(ticket_id, action, fields, caller.name), with_audit=True)
    except NotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except TransitionRefused as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    except RecordMissing as exc:
        detail = [{"loc": ["body", f], "msg": str(exc), "type": "missing"} for f in exc.fields]
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail) from None
