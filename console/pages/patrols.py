"""Today's patrol rounds per site with each checkpoint's status; a guard's own round and what is next."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.responses import HTMLResponse

from accounts.roles import Role
from console.pages.devices import reads_devices
from console.session import Visitor, signed_in
from console.web import render
from patrol.service import PatrolService
from records.models import PatrolRound, PatrolVisit
from records.states import VisitStatus

router = APIRouter()


def next_due(r: PatrolRound) -> PatrolVisit | None:
    """The round's first checkpoint still waiting for its scan."""
    return next((v for v in r.visits if v.status is VisitStatus.PENDING), None)


@router.get("/patrols", response_class=HTMLResponse)
def patrols_page(request: Request, visitor: Annotated[Visitor, Depends(signed_in)]) -> HTMLResponse:
    """Today's rounds; a guard sees their own."""
    return render(request, "patrols.html", visitor, **_rounds(request, visitor))


@router.get("/patrols/rows", response_class=HTMLResponse)
def patrols_rows(request: Request, visitor: Annotated[Visitor, Depends(signed_in)]) -> HTMLResponse:
    """The rounds alone, for a refresh after a scan."""
    return render(request, "patrols_rows.html", visitor, **_rounds(request, visitor))


def _rounds(request: Request, visitor: Visitor) -> dict[str, Any]:
    if not reads_devices(visitor):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the front desk does not read patrols")
    patrol: PatrolService | None = request.app.state.patrol
    if patrol is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "patrols are not served here")
    today = datetime.now(patrol.zone).date()
    since = datetime.combine(today, time.min, patrol.zone)
    guard = visitor.caller.name if visitor.role is Role.GUARD else None
    found = patrol.rounds(None, guard, None, since, since + timedelta(days=1), 500)
    rounds = sorted(visitor.caller.only_visible(found), key=lambda r: (r.site, r.start, r.id))
    names = {c.id: c.name for site in {r.site for r in rounds} for c in patrol.checkpoints(site)}
    routes = {r.route_id: patrol.route(r.route_id).name for r in rounds}
    return {
        "rounds": rounds,
        "checkpoint_names": names,
        "route_names": routes,
        "next_due": {r.id: next_due(r) for r in rounds},
        "today": today,
        "own": guard is not None,
    }
