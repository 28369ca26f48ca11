"""Maintenance windows: alarms of the devices people work on are held, not ticketed."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, status
from pydantic import BaseModel, Field, field_validator, model_validator

from api.auth import ANYONE, STAFF, Caller, allow
from api.errors import invalid
from api.schemas import MAX_ID, SITE_OR_DEVICE, Input
from api.sites import mine_or_403, seen_or_404
from ground.clock import as_utc
from maintenance.windows import BadWindow, Covered, WindowBook, WindowMissing
from records.models import MaintenanceWindow
from tickets.service import TicketService

router = APIRouter(prefix="/maintenance/windows", tags=["maintenance"])
WindowId = Annotated[int, Path(ge=1, le=MAX_ID)]
Site = Annotated[str, Field(pattern=SITE_OR_DEVICE)]


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("give the time with its offset (…Z or …+08:00)")
    return as_utc(value)


class WindowCreate(Input):
    """A window: the devices (or a building) of a site, from `start` to `end`, and why."""

    site: Site
    device_ids: list[Site] = Field(default_factory=list, max_length=500)
    building: str | None = Field(default=None, min_length=1, max_length=100)
    start: datetime
    end: datetime
    reason: str = Field(min_length=1, max_length=300)

    _times = field_validator("start", "end")(_aware)

    @model_validator(mode="after")
    def _covers_something(self) -> WindowCreate:
        if not self.device_ids and not self.building:
            raise ValueError("name the devices (device_ids) or the building the window covers")
        return self


class WindowChange(Input):
    """A new end (to shorten or lengthen a window) or reason."""

    end: datetime | None = None
    reason: str | None = Field(default=None, min_length=1, max_length=300)

    _times = field_validator("end")(_aware)


class WindowPublic(BaseModel):
    """A maintenance window as the API shows it."""

    id: int
    site: str
    device_ids: list[str]
    building: str | None
    start: datetime
    end: datetime
    reason: str
    created_by: str
    created_at: datetime
    work_order_id: int | None
    closed_at: datetime | None = Field(description="when its end was dealt with: held alarms released")


def window_public(w: MaintenanceWindow) -> WindowPublic:
    """The public view of a window."""
    return WindowPublic(
        id=w.id,
        site=w.site,
        device_ids=list(w.device_ids),
        building=w.building,
        start=w.start,
        end=w.end,
        reason=w.reason,
        created_by=w.created_by,
        created_at=w.created_at,
        work_order_id=w.work_order_id,
        closed_at=w.closed_at,
    )


def _book(request: Request) -> WindowBook:
    tickets: TicketService = request.app.state.tickets
    return WindowBook(tickets.db, tickets.clock)


def _mine(caller: Caller, book: WindowBook, window_id: int) -> MaintenanceWindow:
    """The window, or 404 when it is missing or of a site the caller does not see."""
    try:
        window = book.get(window_id)
    except WindowMissing as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    seen_or_404(caller, window.site, f"maintenance window {window_id}")
    return window


@router.post("", response_model=WindowPublic, status_code=status.HTTP_201_CREATED)
def add_window(
    body: WindowCreate, request: Request, caller: Annotated[Caller, Depends(allow(*STAFF))]
) -> WindowPublic:
    """Hold the alarms of these devices (or of a building) from start to end, except life safety."""
    mine_or_403(caller, body.site)
    covered = Covered(body.site, tuple(body.device_ids), body.building)
    try:
        window = _book(request).add(covered, body.start, body.end, body.reason, caller.name)
    except BadWindow as exc:
        raise invalid(["body", exc.field], str(exc)) from None
    return window_public(window)


@router.get("", response_model=list[WindowPublic])
def list_windows(
    request: Request,
    caller: Annotated[Caller, Depends(allow(*ANYONE))],
    site: Annotated[str | None, Query(pattern=SITE_OR_DEVICE)] = None,
    current: Annotated[bool, Query(description="only windows not yet ended")] = False,
) -> list[WindowPublic]:
    """Windows of the caller's sites, newest start first."""
    return [window_public(w) for w in _book(request).list(caller.visible(site), current)]


@router.get("/{window_id}", response_model=WindowPublic)
def get_window(
    window_id: WindowId, request: Request, caller: Annotated[Caller, Depends(allow(*ANYONE))]
) -> WindowPublic:
    """One window."""
    return window_public(_mine(caller, _book(request), window_id))


@router.patch("/{window_id}", response_model=WindowPublic)
def change_window(
    window_id: WindowId,
    body: WindowChange,
    request: Request,
    caller: Annotated[Caller, Depends(allow(*STAFF))],
) -> WindowPublic:
    """Move a window's end or change its reason."""
    book = _book(request)
    _mine(caller, book, window_id)
    try:
        return window_public(book.change(window_id, body.end, body.reason))
    except BadWindow as exc:
        raise invalid(["body", exc.field], str(exc)) from None


@router.delete("/{window_id}", response_model=WindowPublic)
def end_window(
    window_id: WindowId, request: Request, caller: Annotated[Caller, Depends(allow(*STAFF))]
) -> WindowPublic:
    """End a window now: within a minute, alarms it held that still hold open their tickets."""
    book = _book(request)
    _mine(caller, book, window_id)
    return window_public(book.end_now(window_id))
