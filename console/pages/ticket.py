"""One ticket: what and where, the device's readings and chart, its audit trail, and the actions allowed."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Request, status
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from accounts.roles import Role
from api.auth import STAFF
from api.routes.tickets import visible_ticket
from collector.stores.base import StoreRejected, StoreUnavailable, TimeSeriesStore
from console.session import Visitor, checked, signed_in
from console.web import render
from ground.clock import to_ms
from maintenance.service import Conflict, MaintenanceError, MaintenanceService, Mark
from maintenance.service import NotFound as NoWorkOrder
from records.devices import DeviceDirectory
from records.models import Device, Ticket, WorkOrder
from records.states import CauseClass
from tickets.lifecycle import TRANSITIONS, Action, RecordMissing, Source, TransitionRefused, required_steps
from tickets.service import ActionFields, TicketService

router = APIRouter()
TicketId = Annotated[int, Path(ge=1, le=2**31 - 1)]
# The fields of the action forms, as ActionFields names them.
TEXT_FIELDS = (
    "assignee",
    "note",
    "cause",
    "measures",
    "result",
    "temporary_measures",
    "followup",
    "satisfaction_comment",
)
STEP_BOXES = ("emergency_plan_started", "leadership_informed")
CHART_SPAN_MS = 6 * 3_600_000
# A checklist item's choice in the form: not yet marked, done, not done (with a note).
MARKS: dict[str, bool | None] = {"": None, "done": True, "not_done": False}


def may_act(visitor: Visitor) -> bool:
    """Whether the visitor's role works tickets (the API's rule)."""
    return visitor.role is Role.ADMIN or visitor.role in STAFF


def _ticket(request: Request, visitor: Visitor, ticket_id: int) -> Ticket:
    """The ticket, or 404 when it is missing or not the visitor's to see (the API's rule)."""
    return visible_ticket(request.app.state.tickets, ticket_id, visitor.caller)


def _device(request: Request, ticket: Ticket) -> Device | None:
    directory: DeviceDirectory = request.app.state.devices
    return directory.get(ticket.site, ticket.device_id) if ticket.device_id else None


def _first_number(values: dict[str, Any]) -> str | None:
    return next(
        (k for k, v in values.items() if isinstance(v, int | float) and not isinstance(v, bool)), None
    )


def chart_metric(ticket: Ticket, device: Device | None) -> str | None:
    """The metric that raised the ticket (the first number its rule read), else the device's first number.

    A fault flag (a pump's `fault`) is no line to draw; the device's own measure beside it is.
    """
    for entry in ticket.audit:
        if entry.action == "open" and (name := _first_number(entry.detail.get("detail") or {})):
            return name
    return _first_number(device.latest) if device is not None else None


def work_order(request: Request, ticket: Ticket) -> WorkOrder | None:
    """The work order a maintenance ticket is, if any."""
    maintenance: MaintenanceService | None = request.app.state.maintenance
    if maintenance is None or ticket.source != Source.MAINTENANCE:
        return None
    try:
        return maintenance.work_order(ticket.id)
    except NoWorkOrder:
        return None


def allowed_actions(ticket: Ticket) -> list[Action]:
    """The actions the lifecycle allows from the ticket's status."""
    return [a for a in Action if ticket.status in TRANSITIONS[a]]


def _page(
    request: Request, visitor: Visitor, ticket: Ticket, error: str | None = None, code: int = 200
) -> HTMLResponse:
    device = _device(request, ticket)
    return render(
        request,
        "ticket.html",
        visitor,
        code,
        ticket=ticket,
        device=device,
        metric=chart_metric(ticket, device),
        actions=allowed_actions(ticket) if may_act(visitor) else [],
        steps=[] if ticket.source == Source.MAINTENANCE else required_steps(ticket.severity),
        order=work_order(request, ticket),
        error=error,
    )


@router.get("/tickets/{ticket_id}", response_class=HTMLResponse)
def ticket_page(
    ticket_id: TicketId, request: Request, visitor: Annotated[Visitor, Depends(signed_in)]
) -> HTMLResponse:
    """A ticket with everything needed to work it."""
    return _page(request, visitor, _ticket(request, visitor, ticket_id))


# Before the actions' route, whose `{action}` would otherwise take the word.
@router.post("/tickets/{ticket_id}/checklist", response_class=HTMLResponse)
async def mark_checklist(
    ticket_id: TicketId, request: Request, visitor: Annotated[Visitor, Depends(checked)]
) -> Response:
    """Mark a work order's checklist from the ticket page; a refusal shows the page again with the reason."""
    if not may_act(visitor):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"role {visitor.role.value} may not work tickets")
    form = await request.form()
    marks = []
    for n in range(100):
        item, choice, note = form.get(f"item-{n}"), form.get(f"done-{n}", ""), form.get(f"note-{n}", "")
        if not isinstance(item, str):
            break
        if not isinstance(choice, str) or choice not in MARKS or not isinstance(note, str):
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"item {n}: done, not_done or nothing")
        marks.append(Mark(item[:200], MARKS[choice], note.strip()[:2000] or None))
    return await run_in_threadpool(_mark, request, visitor, ticket_id, marks)


def _mark(request: Request, visitor: Visitor, ticket_id: int, marks: list[Mark]) -> Response:
    ticket = _ticket(request, visitor, ticket_id)
    maintenance: MaintenanceService | None = request.app.state.maintenance
    if maintenance is None or work_order(request, ticket) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"ticket {ticket_id} is no work order")
    try:
        maintenance.mark(ticket.id, marks, visitor.caller.name)
    except Conflict as exc:
        return _page(request, visitor, ticket, str(exc), status.HTTP_409_CONFLICT)
    except MaintenanceError as exc:
        return _page(request, visitor, ticket, str(exc), 422)
    return RedirectResponse(f"/tickets/{ticket.id}", status.HTTP_303_SEE_OTHER)


@router.post("/tickets/{ticket_id}/{action}", response_class=HTMLResponse)
async def act(
    ticket_id: TicketId, action: Action, request: Request, visitor: Annotated[Visitor, Depends(checked)]
) -> Response:
    """Carry out an action from the ticket page; a refusal shows the page again with the reason."""
    if not may_act(visitor):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"role {visitor.role.value} may not work tickets")
    form = await request.form()
    values: dict[str, Any] = {}
    for name in TEXT_FIELDS:
        text = form.get(name)
        if isinstance(text, str) and text.strip():
            values[name] = text.strip()[:5000]
    for name in STEP_BOXES:
        if form.get(name):
            values[name] = True
    cause_class, score = form.get("cause_class"), form.get("satisfaction")
    if isinstance(cause_class, str) and cause_class in {c.value for c in CauseClass}:
        values["cause_class"] = CauseClass(cause_class)
    if isinstance(score, str) and score in {"1", "2", "3", "4", "5"}:
        values["satisfaction"] = int(score)
    else:
        values.pop("satisfaction_comment", None)  # a comment belongs to a score (§9.1.1)
    # Async only to read the form; the records are worked on a worker thread, off the event loop.
    return await run_in_threadpool(_act, request, visitor, ticket_id, action, ActionFields(**values))


def _act(
    request: Request, visitor: Visitor, ticket_id: int, action: Action, fields: ActionFields
) -> Response:
    service: TicketService = request.app.state.tickets
    ticket = _ticket(request, visitor, ticket_id)
    try:
        service.act(ticket.id, action, fields, visitor.caller.name)
    except TransitionRefused as exc:
        return _page(request, visitor, ticket, str(exc), status.HTTP_409_CONFLICT)
    except RecordMissing as exc:
        return _page(request, visitor, ticket, f"{exc} ({', '.join(exc.fields)})", 422)
    return RedirectResponse(f"/tickets/{ticket.id}", status.HTTP_303_SEE_OTHER)


@router.get("/tickets/{ticket_id}/chart")
def chart(ticket_id: TicketId, request: Request, visitor: Annotated[Visitor, Depends(signed_in)]) -> Response:
    """The raising metric's values around the ticket, as uPlot takes them: [[seconds], [values]]."""
    ticket = _ticket(request, visitor, ticket_id)
    device = _device(request, ticket)
    metric = chart_metric(ticket, device)
    if metric is None or device is None:
        return JSONResponse({"metric": metric, "data": [[], []]})
    store: TimeSeriesStore = request.app.state.store
    end_ms = int(time.time() * 1000) + 1
    start_ms = min(to_ms(ticket.opened_at) - 3_600_000, end_ms - 3_600_000)
    start_ms = max(start_ms, end_ms - CHART_SPAN_MS)
    try:
        rows = store.query(
            device.device_type, metric, start_ms, end_ms, site=ticket.site, device_id=device.device_id
        )
    except (StoreUnavailable, StoreRejected) as exc:
        return JSONResponse({"metric": metric, "data": [[], []], "error": str(exc)}, 503)
    points = [(t / 1000, v) for t, v in rows if isinstance(v, int | float)]
    return JSONResponse({"metric": metric, "data": [[t for t, _ in points], [v for _, v in points]]})
