"""The front desk's occupant report: device or place, what, contact; it opens an `occupant` ticket.

A report about a device or place with an open ticket joins that ticket instead (§4.2.1).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.routes.tickets import visible
from console.pages.tickets import visible_sites
from console.session import Visitor, checked, signed_in
from console.web import render
from ground.contract import SITE_OR_DEVICE_ID
from records.devices import DeviceDirectory
from tickets.lifecycle import Source
from tickets.service import NewTicket, TicketFilter, TicketService

router = APIRouter()
Text = Annotated[str, Form(max_length=300)]
LongText = Annotated[str, Form(max_length=5000)]


def _page(request: Request, visitor: Visitor, error: str | None = None, code: int = 200) -> HTMLResponse:
    directory: DeviceDirectory = request.app.state.devices
    service: TicketService = request.app.state.tickets
    devices = [d for d in directory.list(None) if visitor.caller.sees(d.site)]
    mine = TicketFilter(source=Source.OCCUPANT, sites=visitor.caller.sites, limit=50, due_first=True)
    return render(
        request,
        "report.html",
        visitor,
        code,
        sites=visible_sites(request, visitor),
        devices=sorted(devices, key=lambda d: (d.site, d.device_id)),
        reports=service.list(mine),
        error=error,
    )


@router.get("/report", response_class=HTMLResponse)
def report_form(request: Request, visitor: Annotated[Visitor, Depends(signed_in)]) -> HTMLResponse:
    """The report form, and the occupants' reports with their progress."""
    return _page(request, visitor)


@router.post("/report", response_class=HTMLResponse)
def file_report(
    request: Request,
    visitor: Annotated[Visitor, Depends(checked)],
    site: Annotated[str, Form(max_length=64)],
    title: Text,
    device_id: Annotated[str, Form(max_length=64)] = "",
    location: Text = "",
    description: LongText = "",
    reporter: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Open the occupant's ticket, or join the open one of its device or place, and show it."""
    if not SITE_OR_DEVICE_ID.fullmatch(site) or not visitor.caller.sees(site):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"site {site} is not one of yours")
    if not title.strip():
        return _page(request, visitor, "what_reported", status.HTTP_422_UNPROCESSABLE_CONTENT)
    device = device_id.strip() or None
    if device is not None and not SITE_OR_DEVICE_ID.fullmatch(device):
        return _page(request, visitor, "device", status.HTTP_422_UNPROCESSABLE_CONTENT)
    service: TicketService = request.app.state.tickets
    new = NewTicket(
        site=site,
        title=title.strip(),
        source=Source.OCCUPANT,
        description=description.strip() or None,
        device_id=device,
        location=location.strip() or None,
        reporter=reporter.strip() or None,
    )
    # A report about a device or place with an open ticket joins it (§4.2.1), as through the API.
    ticket, joined = service.report(new, visitor.caller.name)
    if not joined:
        return RedirectResponse(f"/tickets/{ticket.id}?filed=1", status.HTTP_303_SEE_OTHER)
    if not visible(visitor.caller, ticket):
        # The front desk does not see an alarm's ticket; it hears which one the report joined.
        return RedirectResponse(f"/report?joined={ticket.id}", status.HTTP_303_SEE_OTHER)
    return RedirectResponse(f"/tickets/{ticket.id}?joined=1", status.HTTP_303_SEE_OTHER)
