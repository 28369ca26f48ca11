"""The ticket board: counts by class and status, filters, what is due first; refreshed as tickets change."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from accounts.roles import Role
from console.session import Visitor, signed_in
from console.web import render
from ground.contract import SITE_OR_DEVICE_ID
from ground.severity import Severity
from records.devices import DeviceDirectory
from tickets.lifecycle import Source, Status
from tickets.service import TicketFilter, TicketService

router = APIRouter()
BOARD_SIZE = 200
E = TypeVar("E", bound=StrEnum)


def _choice(enum: type[E], value: str) -> E | None:
    """A filter's choice; blank (the form's "any") or unknown means any."""
    try:
        return enum(value) if value else None
    except ValueError:
        return None


@dataclass(frozen=True)
class BoardQuery:
    """The board's filters as the filter form sends them: blank is any."""

    site: str | None
    severity: Severity | None
    status: Status | None
    source: Source | None
    overdue: bool

    def ticket_filter(self, visitor: Visitor) -> TicketFilter:
        """The visitor's view: their sites, and occupants' reports only for the front desk."""
        source = Source.OCCUPANT if visitor.role is Role.FRONT_DESK else self.source
        return TicketFilter(
            status=self.status,
            severity=self.severity,
            site=self.site,
            source=source,
            limit=BOARD_SIZE,
            sites=visitor.caller.visible(self.site),
            overdue=self.overdue,
            due_first=True,
        )


def board_query(
    site: str = "",
    severity: Annotated[str, Query(alias="class")] = "",
    status: str = "",
    source: str = "",
    overdue: str = "",
) -> BoardQuery:
    """The filters of a board request."""
    return BoardQuery(
        site=site if SITE_OR_DEVICE_ID.fullmatch(site) else None,
        severity=_choice(Severity, severity),
        status=_choice(Status, status),
        source=_choice(Source, source),
        overdue=overdue.lower() in ("1", "true", "on", "yes"),
    )


Query_ = Annotated[BoardQuery, Depends(board_query)]
Signed = Annotated[Visitor, Depends(signed_in)]


@router.get("/", response_class=HTMLResponse)
def board(request: Request, visitor: Signed, query: Query_) -> HTMLResponse:
    """The ticket board."""
    # The filter's choices are the page's alone: a refresh of the rows does not look them up again.
    sources = [Source.OCCUPANT] if visitor.role is Role.FRONT_DESK else list(Source)
    choices: dict[str, Any] = {"sites": visible_sites(request, visitor), "sources": sources}
    return render(request, "board.html", visitor, **_board(request, visitor, query), **choices)


@router.get("/board/rows", response_class=HTMLResponse)
def board_rows(request: Request, visitor: Signed, query: Query_) -> HTMLResponse:
    """The board's counts and rows alone, for a refresh without reloading the page."""
    return render(request, "board_rows.html", visitor, **_board(request, visitor, query))


def _board(request: Request, visitor: Visitor, query: BoardQuery) -> dict[str, Any]:
    service: TicketService = request.app.state.tickets
    wanted = query.ticket_filter(visitor)
    return {
        "tickets": service.list(wanted),
        "counts": service.counts(wanted.sites, source=wanted.source),
        "classes": list(Severity),
        "statuses": list(Status),
        "chosen": query,
        "now": service.clock(),
    }


def visible_sites(request: Request, visitor: Visitor) -> list[str]:
    """The sites a visitor may pick: theirs, or every site with a device or an open ticket."""
    if visitor.caller.sites is not None:
        return sorted(visitor.caller.sites)
    directory: DeviceDirectory = request.app.state.devices
    service: TicketService = request.app.state.tickets
    return sorted({d.site for d in directory.list(None)} | set(service.open_counts()))
