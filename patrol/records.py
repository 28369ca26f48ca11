"""The patrol records people keep: checkpoints, routes, plans, and the rounds they make.

Creating a round only writes it down, every checkpoint pending; judging it is `deadlines.py`'s.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from patrol import evaluation
from patrol.evaluation import RoundStatus, Timing, VisitStatus
from patrol.schedule import occurrences
from records.db import Database
from records.models import PatrolCheckpoint, PatrolPlan, PatrolRound, PatrolRoute, PatrolVisit

PLAN_AHEAD = timedelta(hours=24)  # planned rounds exist this long before they start
_Row = TypeVar("_Row", PatrolCheckpoint, PatrolRoute, PatrolPlan)


class PatrolError(ValueError):
    """A request the patrol records cannot take; `field` names what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class NotFound(LookupError):
    """No such checkpoint, route, plan or round."""


class Exists(ValueError):
    """An id already taken."""


@dataclass(frozen=True)
class RouteStop:
    """A checkpoint on a route, due `after_min` minutes after the round starts."""

    checkpoint: str
    after_min: float


class PatrolRecords:
    """Creates and reads checkpoints, routes, plans and rounds."""

    def __init__(
        self,
        db: Database,
        timing: Timing,
        zone: ZoneInfo,
        clock: Callable[[], datetime],
        lock: threading.RLock,
    ) -> None:
        self.db = db
        self.timing = timing
        self.zone = zone
        self.clock = clock
        self._lock = lock  # rounds are created while scans and deadlines judge others

    # --- checkpoints ---------------------------------------------------------------------------

    def add_checkpoint(self, cp: PatrolCheckpoint) -> PatrolCheckpoint:
        """Register a checkpoint; its id and its tag (on its site) must be new."""
        try:
            with self.db.session() as s:
                s.add(cp)
        except IntegrityError:
            raise Exists(f"checkpoint {cp.id} or tag {cp.tag} on {cp.site} exists already") from None
        return cp

    def checkpoints(self, site: str | None = None) -> Sequence[PatrolCheckpoint]:
        """Checkpoints, of one site or all."""
        q = select(PatrolCheckpoint).order_by(PatrolCheckpoint.site, PatrolCheckpoint.id)
        if site:
            q = q.where(PatrolCheckpoint.site == site)
        with self.db.read() as s:
            return s.scalars(q).all()

    def checkpoint(self, checkpoint_id: str) -> PatrolCheckpoint:
        """One checkpoint."""
        with self.db.read() as s:
            return _get(s, PatrolCheckpoint, checkpoint_id)

    # --- routes --------------------------------------------------------------------------------

    def add_route(self, route_id: str, site: str, name: str, stops: Sequence[RouteStop]) -> PatrolRoute:
        """A route over checkpoints of its site, in walking order, due at non-decreasing minutes."""
        try:
            return self._add_route(route_id, site, name, stops)
        except IntegrityError:  # created at the same moment by another request
            raise Exists(f"route {route_id} exists already") from None

    def _add_route(self, route_id: str, site: str, name: str, stops: Sequence[RouteStop]) -> PatrolRoute:
        if not stops:
            raise PatrolError("checkpoints", "a route needs at least one checkpoint")
        if any(b.after_min < a.after_min for a, b in itertools.pairwise(stops)):
            raise PatrolError("checkpoints", "after_min must not decrease along the route")
        with self.db.session() as s:
            known = {
                c.id: c for c in s.scalars(select(PatrolCheckpoint).where(PatrolCheckpoint.site == site))
            }
            for stop in stops:
                if stop.checkpoint not in known:
                    raise PatrolError("checkpoints", f"no checkpoint {stop.checkpoint} on site {site}")
            if s.get(PatrolRoute, route_id) is not None:
                raise Exists(f"route {route_id} exists already")
            route = PatrolRoute(
                id=route_id,
                site=site,
                name=name,
                checkpoints=[{"checkpoint": st.checkpoint, "after_min": st.after_min} for st in stops],
            )
            s.add(route)
        return route

    def routes(self, site: str | None = None) -> Sequence[PatrolRoute]:
        """Routes, of one site or all."""
        q = select(PatrolRoute).order_by(PatrolRoute.site, PatrolRoute.id)
        if site:
            q = q.where(PatrolRoute.site == site)
        with self.db.read() as s:
            return s.scalars(q).all()

    def route(self, route_id: str) -> PatrolRoute:
        """One route."""
        with self.db.read() as s:
            return _get(s, PatrolRoute, route_id)

    # --- plans ---------------------------------------------------------------------------------

    def add_plan(
        self,
        route_id: str,
        weekdays: Sequence[int],
        start_times: Sequence[str],
        guards: Sequence[str],
        valid_from: date,
        valid_until: date | None,
    ) -> PatrolPlan:
        """A plan; its rounds for the next day are created at once, later ones as time goes by."""
        if valid_until is not None and valid_until < valid_from:
            raise PatrolError("until", "until is before from")
        with self.db.session() as s:
            if s.get(PatrolRoute, route_id) is None:
                raise PatrolError("route", f"no route {route_id}")
            plan = PatrolPlan(
                route_id=route_id,
                weekdays=sorted(set(weekdays)),
                start_times=sorted(set(start_times)),
                guards=list(guards),
                valid_from=valid_from,
                valid_until=valid_until,
                created_at=self.clock(),
            )
            s.add(plan)
        self.schedule_plans()
        return plan

    def plans(self, site: str | None = None) -> Sequence[PatrolPlan]:
        """Plans, of one site or all."""
        q = select(PatrolPlan).order_by(PatrolPlan.id)
        if site:
            q = q.join(PatrolRoute).where(PatrolRoute.site == site)
        with self.db.read() as s:
            return s.scalars(q).all()

    def plan(self, plan_id: int) -> PatrolPlan:
        """One plan."""
        with self.db.read() as s:
            return _get(s, PatrolPlan, plan_id)

    def schedule_plans(self) -> int:
        """Create the planned rounds that start within the next day; returns how many were new."""
        now = self.clock()
        made = 0
        with self._lock, self.db.session() as s:
            for plan in s.scalars(select(PatrolPlan)):
                starts = occurrences(
                    plan.weekdays,
                    plan.start_times,
                    plan.valid_from,
                    plan.valid_until,
                    self.zone,
                    max(now, plan.created_at),
                    now + PLAN_AHEAD,
                )
                have = set(
                    s.scalars(
                        select(PatrolRound.start).where(
                            PatrolRound.plan_id == plan.id, PatrolRound.start.in_(starts)
                        )
                    )
                )
                for start in starts:
                    if start not in have:
                        route = s.get(PatrolRoute, plan.route_id)
                        assert route is not None
                        s.add(self._new_round(route, plan.guards, start, plan.id))
                        made += 1
        return made

    # --- rounds --------------------------------------------------------------------------------

    def enter_round(self, route_id: str, guard: str, start: datetime, guards: Sequence[str] = ()) -> int:
        """Write down an ad-hoc round led by `guard`, every checkpoint pending; returns its id."""
        with self._lock, self.db.session() as s:
            route = s.get(PatrolRoute, route_id)
            if route is None:
                raise PatrolError("route", f"no route {route_id}")
            crew = [guard, *(g for g in guards if g != guard)]
            new = self._new_round(route, crew, _utc(start), None)
            s.add(new)
            s.flush()
            return new.id

    def _new_round(
        self, route: PatrolRoute, guards: Sequence[str], start: datetime, plan_id: int | None
    ) -> PatrolRound:
        stops = _stops(route, start)
        return PatrolRound(
            site=route.site,
            route_id=route.id,
            plan_id=plan_id,
            guard=guards[0] if guards else "",
            guards=list(guards),
            start=start,
            window_end=evaluation.window_end(stops, start, self.timing),
            status=RoundStatus.SCHEDULED.value,
            next_deadline=max(
                start + timedelta(seconds=self.timing.start_grace_s),
                self.clock() + timedelta(seconds=min(self.timing.settle_s, self.timing.grace_s)),
            ),
            start_missed=False,
            created_at=self.clock(),
            visits=[
                PatrolVisit(
                    position=i, checkpoint_id=st.checkpoint, due=st.due, status=VisitStatus.PENDING.value
                )
                for i, st in enumerate(stops)
            ],
        )

    def rounds(
        self,
        site: str | None = None,
        guard: str | None = None,
        status: RoundStatus | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
    ) -> Sequence[PatrolRound]:
        """Rounds, newest start first, with their checkpoints."""
        q = select(PatrolRound).options(selectinload(PatrolRound.visits))
        if site:
            q = q.where(PatrolRound.site == site)
        if status:
            q = q.where(PatrolRound.status == status.value)
        if since:
            q = q.where(PatrolRound.start >= since)
        if until:
            q = q.where(PatrolRound.start < until)
        with self.db.read() as s:
            found = s.scalars(q.order_by(PatrolRound.start.desc(), PatrolRound.id.desc())).all()
        if guard:
            # Led by them or shared with them: the JSON list is matched here, the same on every database.
            found = [r for r in found if guard in r.guards]
        return found[:limit]

    def round(self, round_id: int) -> PatrolRound:
        """One round with its checkpoints."""
        with self.db.read() as s:
            found = s.scalars(
                select(PatrolRound)
                .options(selectinload(PatrolRound.visits))
                .where(PatrolRound.id == round_id)
            ).one_or_none()
        if found is None:
            raise NotFound(f"no round {round_id}")
        return found


def _utc(t: datetime) -> datetime:
    if t.tzinfo is None:
        raise PatrolError("start", "give the time with its offset (…Z or …+08:00)")
    return t.astimezone(UTC)


def _stops(route: PatrolRoute, start: datetime) -> list[evaluation.Stop]:
    return [
        evaluation.Stop(str(c["checkpoint"]), start + timedelta(minutes=float(c["after_min"])))
        for c in route.checkpoints
    ]


def _get(s: Session, model: type[_Row], key: Any) -> _Row:
    found = s.get(model, key)
    if found is None:
        raise NotFound(f"no {str(model.__tablename__).removeprefix('patrol_').rstrip('s')} {key}")
    return found
