"""Patrols (電子巡更): checkpoints, routes, plans, rounds and the completion report."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, status

from api.auth import ANYONE, STAFF, Caller, Role, allow
from api.errors import invalid, problem
from api.patrol_schemas import (
    CheckpointCreate,
    CheckpointPublic,
    PlanCreate,
    PlanPublic,
    RoundCreate,
    RoundPublic,
    RouteCreate,
    RoutePublic,
    checkpoint_public,
    plan_public,
    round_public,
    route_public,
)
from api.schemas import MAX_ID, SITE_OR_DEVICE
from api.sites import mine_or_403, seen_or_404
from ground.clock import as_utc
from patrol.evaluation import RoundStatus
from patrol.service import EARLIEST, LATEST, Exists, NotFound, PatrolError, PatrolService, RouteStop
from records.models import PatrolCheckpoint, PatrolRound

router = APIRouter(
    prefix="/patrol", tags=["patrol"], responses={503: problem("patrols are not served by this service")}
)
MANAGERS = (Role.MANAGER,)
Site = Annotated[str | None, Query(pattern=SITE_OR_DEVICE)]
Ident = Annotated[str, Path(pattern=SITE_OR_DEVICE)]


async def _patrol(request: Request) -> PatrolService:
    patrol: PatrolService | None = request.app.state.patrol
    if patrol is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "patrols are not served here")
    return patrol


Patrol = Annotated[PatrolService, Depends(_patrol)]
Reader = Annotated[Caller, Depends(allow(*ANYONE))]


def _routeseen_or_404(caller: Caller, patrol: PatrolService, route_id: str) -> None:
    """404 for a route of another site; a missing one is left for the service to name (422)."""
    try:
        site = patrol.route(route_id).site
    except NotFound:
        return
    seen_or_404(caller, site, f"route {route_id}")


def _one_site(caller: Caller, site: str | None) -> str | None:
    """The site a caller limited to sites asks for: theirs when they have one, else the one named."""
    if site is not None:
        mine_or_403(caller, site)
        return site
    if caller.sites is not None:
        if len(caller.sites) != 1:
            raise invalid(["query", "site"], "name one of your sites")
        return next(iter(caller.sites))
    return None


@contextmanager
def _answers() -> Iterator[None]:
    """The patrol records' refusals as HTTP: 404 missing, 409 a taken id, 422 with the field."""
    try:
        yield
    except NotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except Exists as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    except PatrolError as exc:
        raise invalid(["body", exc.field], str(exc)) from None


# --- checkpoints ------------------------------------------------------------------------------


@router.post("/checkpoints", response_model=CheckpointPublic, status_code=status.HTTP_201_CREATED)
def add_checkpoint(
    body: CheckpointCreate, patrol: Patrol, caller: Annotated[Caller, Depends(allow(*MANAGERS))]
) -> CheckpointPublic:
    """Register a checkpoint (巡更點) and its tag."""
    mine_or_403(caller, body.site)
    cp_id = body.id or _default_id(body.tag, "cp")
    cp = PatrolCheckpoint(
        id=cp_id,
        site=body.site,
        name=body.name,
        tag=body.tag,
        location=body.location,
        building=body.building,
        floor=body.floor,
    )
    with _answers():
        return checkpoint_public(patrol.add_checkpoint(cp))


@router.get("/checkpoints", response_model=list[CheckpointPublic])
def list_checkpoints(patrol: Patrol, caller: Reader, site: Site = None) -> list[CheckpointPublic]:
    """Checkpoints, of one site or all of the caller's."""
    return [checkpoint_public(c) for c in caller.only_visible(patrol.checkpoints(site))]


@router.get("/checkpoints/{checkpoint_id}", response_model=CheckpointPublic)
def get_checkpoint(checkpoint_id: Ident, patrol: Patrol, caller: Reader) -> CheckpointPublic:
    """One checkpoint."""
    with _answers():
        found = patrol.checkpoint(checkpoint_id)
    seen_or_404(caller, found.site, f"checkpoint {checkpoint_id}")
    return checkpoint_public(found)


# --- routes -----------------------------------------------------------------------------------


@router.post("/routes", response_model=RoutePublic, status_code=status.HTTP_201_CREATED)
def add_route(
    body: RouteCreate, patrol: Patrol, caller: Annotated[Caller, Depends(allow(*MANAGERS))]
) -> RoutePublic:
    """A route: its site's checkpoints in walking order, each due `after_min` after the start."""
    mine_or_403(caller, body.site)
    stops = [RouteStop(c.checkpoint, c.after_min) for c in body.checkpoints]
    with _answers():
        route_id = body.id or _default_id(body.name, "route")
        return route_public(patrol.add_route(route_id, body.site, body.name, stops))


@router.get("/routes", response_model=list[RoutePublic])
def list_routes(patrol: Patrol, caller: Reader, site: Site = None) -> list[RoutePublic]:
    """Routes, of one site or all of the caller's."""
    return [route_public(r) for r in caller.only_visible(patrol.routes(site))]


@router.get("/routes/{route_id}", response_model=RoutePublic)
def get_route(route_id: Ident, patrol: Patrol, caller: Reader) -> RoutePublic:
    """One route."""
    with _answers():
        found = patrol.route(route_id)
    seen_or_404(caller, found.site, f"route {route_id}")
    return route_public(found)


# --- plans ------------------------------------------------------------------------------------


@router.post(
    "/plans", response_model=PlanPublic, response_model_by_alias=True, status_code=status.HTTP_201_CREATED
)
def add_plan(
    body: PlanCreate, patrol: Patrol, caller: Annotated[Caller, Depends(allow(*MANAGERS))]
) -> PlanPublic:
    """A plan; it creates its rounds a day ahead."""
    valid_from = body.valid_from or datetime.now(patrol.zone).date()
    with _answers():
        _routeseen_or_404(caller, patrol, body.route)
        plan = patrol.add_plan(
            body.route, body.weekdays, body.start_times, body.guards, valid_from, body.valid_until
        )
        return plan_public(plan)


@router.get("/plans", response_model=list[PlanPublic], response_model_by_alias=True)
def list_plans(patrol: Patrol, caller: Reader, site: Site = None) -> list[PlanPublic]:
    """Plans, of one site or all of the caller's."""
    mine = {r.id for r in caller.only_visible(patrol.routes(site))}
    return [plan_public(p) for p in patrol.plans(site) if p.route_id in mine]


@router.get("/plans/{plan_id}", response_model=PlanPublic, response_model_by_alias=True)
def get_plan(plan_id: Annotated[int, Path(ge=1, le=MAX_ID)], patrol: Patrol, caller: Reader) -> PlanPublic:
    """One plan."""
    with _answers():
        found = patrol.plan(plan_id)
        seen_or_404(caller, patrol.route(found.route_id).site, f"plan {plan_id}")
    return plan_public(found)


# --- rounds -----------------------------------------------------------------------------------


@router.post("/rounds", response_model=RoundPublic, status_code=status.HTTP_201_CREATED)
def start_round(
    body: RoundCreate,
    patrol: Patrol,
    caller: Annotated[Caller, Depends(allow(*MANAGERS, Role.GUARD))],
) -> RoundPublic:
    """Start an ad-hoc round; a guard may start only their own. A past start records a walk done offline."""
    if caller.role is Role.GUARD and (body.guard != caller.name or set(body.guards) - {caller.name}):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "a guard may start only their own rounds, alone")
    with _answers():
        _routeseen_or_404(caller, patrol, body.route)
        return _public(patrol, patrol.start_round(body.route, body.guard, body.start, body.guards))


@router.get("/rounds", response_model=list[RoundPublic])
def list_rounds(
    patrol: Patrol,
    caller: Annotated[Caller, Depends(allow(*ANYONE))],
    site: Site = None,
    guard: Annotated[str | None, Query(pattern=SITE_OR_DEVICE)] = None,
    status_: Annotated[RoundStatus | None, Query(alias="status")] = None,
    since: Annotated[datetime | None, Query(alias="from")] = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[RoundPublic]:
    """Rounds, newest start first; a guard sees only their own."""
    if caller.role is Role.GUARD:
        guard = caller.name
    if caller.sites is not None and site is None and len(caller.sites) == 1:
        site = next(iter(caller.sites))
    found = patrol.rounds(site, guard, status_, _aware(since, "from"), _aware(until, "until"), limit)
    found = caller.only_visible(found)
    sites = {r.site for r in found}
    # Checkpoint ids are unique across sites: one look-up names the checkpoints of every round.
    checkpoints = {c.id: c for c in patrol.checkpoints(sites.pop() if len(sites) == 1 else None)}
    return [round_public(r, checkpoints) for r in found]


@router.get(
    "/rounds/{round_id}",
    response_model=RoundPublic,
    responses={403: problem("a guard sees only their own rounds")},
)
def get_round(
    round_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    patrol: Patrol,
    caller: Annotated[Caller, Depends(allow(*ANYONE))],
) -> RoundPublic:
    """One round: every checkpoint with its due time, status and scan time."""
    with _answers():
        found = patrol.round(round_id)
    seen_or_404(caller, found.site, f"round {round_id}")
    if caller.role is Role.GUARD and caller.name not in found.guards:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "a guard sees only their own rounds")
    return _public(patrol, found)


@router.get("/report")
def report(
    patrol: Patrol,
    caller: Annotated[Caller, Depends(allow(*STAFF))],
    site: Site = None,
    since: Annotated[datetime | None, Query(alias="from", description="default: 30 days ago")] = None,
    until: Annotated[datetime | None, Query(description="default: now")] = None,
) -> dict[str, Any]:
    """Completion and on-time rates per guard and per route over rounds that ended (manual §9.1)."""
    end = _aware(until, "until") or datetime.now(UTC)
    start = _aware(since, "from") or end - timedelta(days=30)
    return patrol.report(start, end, _one_site(caller, site))


def _public(patrol: PatrolService, r: PatrolRound) -> RoundPublic:
    return round_public(r, {c.id: c for c in patrol.checkpoints(r.site)})


def _aware(t: datetime | None, name: str) -> datetime | None:
    """A time from the query parameter `name`, UTC unless it says otherwise; 422 outside 2000 to 8999."""
    if t is None:
        return None
    t = as_utc(t)
    if not EARLIEST <= t < LATEST:
        raise invalid(["query", name], "times run from the year 2000 to 8999")
    return t


def _default_id(text: str, prefix: str) -> str:
    """An id from a name or tag when it is a valid id already, else a prefix and random hex."""
    candidate = text.strip().lower().replace(" ", "-")
    if re.fullmatch(SITE_OR_DEVICE, candidate):
        return candidate
    return f"{prefix}-{secrets.token_hex(4)}"
