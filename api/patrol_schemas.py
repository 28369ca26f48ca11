"""Request and response shapes of the patrol API (電子巡更)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from api.schemas import SITE_OR_DEVICE, Input
from patrol.schedule import parse_hhmm
from records.models import PatrolCheckpoint, PatrolPlan, PatrolRound, PatrolRoute

Ident = Field(pattern=SITE_OR_DEVICE)
ROUND_START_RANGE = timedelta(days=366)
WEEKDAY_NAMES = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class CheckpointCreate(Input):
    """A checkpoint and its tag; the id defaults to the tag when that is a valid id."""

    id: str | None = Field(default=None, pattern=SITE_OR_DEVICE)
    site: str = Ident
    name: str = Field(min_length=1, max_length=200)
    tag: str = Field(min_length=1, max_length=128, description="the tag's id as readers report it")
    location: str | None = Field(default=None, min_length=1, max_length=300)
    building: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="as devices name it: alarms there are verified here",
    )
    floor: str | None = Field(default=None, min_length=1, max_length=50)


class CheckpointPublic(BaseModel):
    """A checkpoint."""

    id: str
    site: str
    name: str
    tag: str
    location: str | None
    building: str | None = None
    floor: str | None = None


class RouteStopModel(Input):
    """A checkpoint on a route, due `after_min` minutes after the round starts."""

    checkpoint: str = Ident
    after_min: float = Field(ge=0, le=24 * 60, allow_inf_nan=False)


class RouteCreate(Input):
    """A route: checkpoints in walking order."""

    id: str | None = Field(default=None, pattern=SITE_OR_DEVICE)
    site: str = Ident
    name: str = Field(min_length=1, max_length=200)
    checkpoints: list[RouteStopModel] = Field(min_length=1, max_length=500)


class RoutePublic(BaseModel):
    """A route."""

    id: str
    site: str
    name: str
    checkpoints: list[dict[str, Any]]


class PlanCreate(Input):
    """When a route is walked: weekdays (1 Monday … 7 Sunday), start times (site time), guards, dates."""

    route: str = Ident
    weekdays: list[int] = Field(default=[1, 2, 3, 4, 5, 6, 7], min_length=1, max_length=7)
    start_times: list[str] = Field(min_length=1, max_length=96, description='"HH:MM", site time')
    guards: list[str] = Field(min_length=1, max_length=20)
    valid_from: date | None = Field(default=None, alias="from", description="default: today")
    valid_until: date | None = Field(default=None, alias="until")

    @field_validator("weekdays", mode="before")
    @classmethod
    def _weekdays(cls, value: object) -> object:
        # ISO numbers, 1 Monday to 7 Sunday, or names: "mon", "Tuesday".
        if not isinstance(value, list):
            return value
        days = []
        for d in value:
            name = d.strip().lower()[:3] if isinstance(d, str) else None
            if name in WEEKDAY_NAMES:
                d = WEEKDAY_NAMES.index(name) + 1
            elif isinstance(d, str) and d.strip().isdigit():
                d = int(d)
            if isinstance(d, bool) or not isinstance(d, int) or not 1 <= d <= 7:
                raise ValueError(f"{d!r}: weekdays are 1 (Monday) to 7 (Sunday), or their names")
            days.append(d)
        return days

    @field_validator("start_times")
    @classmethod
    def _times(cls, value: list[str]) -> list[str]:
        return [parse_hhmm(t).strftime("%H:%M") for t in value]

    @field_validator("guards")
    @classmethod
    def _guards(cls, value: list[str]) -> list[str]:
        return _guard_ids(value)


class PlanPublic(BaseModel):
    """A plan."""

    model_config = ConfigDict(populate_by_name=True)

    id: int
    route: str
    weekdays: list[int]
    start_times: list[str]
    guards: list[str]
    valid_from: date = Field(serialization_alias="from")
    valid_until: date | None = Field(serialization_alias="until")


class RoundCreate(Input):
    """An ad-hoc round; `start` may be in the past to record a round walked with an offline reader."""

    route: str = Ident
    guard: str = Ident
    start: datetime
    guards: list[str] = Field(default=[], max_length=20, description="others walking it with the guard")

    @field_validator("guards")
    @classmethod
    def _guards(cls, value: list[str]) -> list[str]:
        return _guard_ids(value)

    @field_validator("start")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("give the time with its offset (…Z or …+08:00)")
        if abs(value - datetime.now(UTC)) > ROUND_START_RANGE:
            raise ValueError("a round starts within a year of now")
        return value


class VisitPublic(BaseModel):
    """A checkpoint of a round."""

    position: int
    checkpoint: str
    name: str | None
    tag: str | None
    due: datetime
    status: str
    scanned_at: datetime | None
    scanned_by: str | None
    offset_s: float | None


class VerifyStopPublic(BaseModel):
    """An extra stop to look at an alarm's place: never late or missed, verified by a scan there."""

    checkpoint: str
    name: str | None
    ticket: int
    device_id: str | None
    added_at: datetime
    status: str = Field(description="pending or verified")
    scanned_at: datetime | None
    scanned_by: str | None
    finding: str | None = Field(description='what the guard found; none with "checked, nothing found"')


class RoundPublic(BaseModel):
    """A round with its checkpoints."""

    id: int
    site: str
    route: str
    plan: int | None
    guard: str
    guards: list[str]
    start: datetime
    status: str
    started_at: datetime | None
    ended_at: datetime | None
    checkpoints: list[VisitPublic]
    verify: list[VerifyStopPublic] = []


def _guard_ids(value: list[str]) -> list[str]:
    """Guard ids, each once, in the order given."""
    for g in value:
        if not re.fullmatch(SITE_OR_DEVICE, g):
            raise ValueError(f"guard {g!r} is not an id ([a-z0-9][a-z0-9_-]*)")
    return list(dict.fromkeys(value))


def checkpoint_public(c: PatrolCheckpoint) -> CheckpointPublic:
    """The public view of a checkpoint."""
    return CheckpointPublic(
        id=c.id, site=c.site, name=c.name, tag=c.tag, location=c.location, building=c.building, floor=c.floor
    )


def route_public(r: PatrolRoute) -> RoutePublic:
    """The public view of a route."""
    return RoutePublic(id=r.id, site=r.site, name=r.name, checkpoints=r.checkpoints)


def plan_public(p: PatrolPlan) -> PlanPublic:
    """The public view of a plan."""
    return PlanPublic(
        id=p.id,
        route=p.route_id,
        weekdays=p.weekdays,
        start_times=p.start_times,
        guards=p.guards,
        valid_from=p.valid_from,
        valid_until=p.valid_until,
    )


def round_public(r: PatrolRound, checkpoints: dict[str, PatrolCheckpoint]) -> RoundPublic:
    """The public view of a round; `checkpoints` names its checkpoints and their tags."""
    return RoundPublic(
        id=r.id,
        site=r.site,
        route=r.route_id,
        plan=r.plan_id,
        guard=r.guard,
        guards=r.guards,
        start=r.start,
        status=r.status,
        started_at=r.started_at,
        ended_at=r.ended_at,
        checkpoints=[
            VisitPublic(
                position=v.position,
                checkpoint=v.checkpoint_id,
                name=cp.name if (cp := checkpoints.get(v.checkpoint_id)) else None,
                tag=cp.tag if cp else None,
                due=v.due,
                status=v.status,
                scanned_at=v.scanned_at,
                scanned_by=v.scanned_by,
                offset_s=v.offset_s,
            )
            for v in r.visits
        ],
        verify=[
            VerifyStopPublic(
                checkpoint=v.checkpoint_id,
                name=cp.name if (cp := checkpoints.get(v.checkpoint_id)) else None,
                ticket=v.ticket_id,
                device_id=v.device_id,
                added_at=v.added_at,
                status="pending" if v.scanned_at is None else "verified",
                scanned_at=v.scanned_at,
                scanned_by=v.scanned_by,
                finding=v.finding,
            )
            for v in r.verify_stops
        ],
    )
