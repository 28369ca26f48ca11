"""Alarms: list active or all, and acknowledge one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, status

from api.auth import ANYONE, STAFF, Caller, allow
from api.schemas import MAX_ID, AlarmPublic, alarm_public
from tickets.service import NotFound, TicketService

router = APIRouter(prefix="/alarms", tags=["alarms"])


@router.get("", response_model=list[AlarmPublic])
def list_alarms(
    request: Request,
    caller: Annotated[Caller, Depends(allow(*ANYONE))],
    active: Annotated[bool, Query(description="only active alarms (default); false: all")] = True,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 200,
    ticket_id: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="only the alarms of this ticket (an outage's devices)")
    ] = None,
) -> list[AlarmPublic]:
    """Alarms of the caller's sites, newest first."""
    service: TicketService = request.app.state.tickets
    found = service.alarms(active, limit, sites=caller.sites, ticket_id=ticket_id)
    return [alarm_public(a) for a in found]


@router.post("/{alarm_id}/acknowledge", response_model=AlarmPublic)
def acknowledge(
    alarm_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    request: Request,
    caller: Annotated[Caller, Depends(allow(*STAFF))],
) -> AlarmPublic:
    """Acknowledge an alarm; it stays active until its condition clears."""
    service: TicketService = request.app.state.tickets
    try:
        return alarm_public(service.acknowledge_alarm(alarm_id, caller.name, caller.sites))
    except NotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
