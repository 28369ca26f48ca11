"""Patrols: the records of checkpoints, routes, plans and rounds, and what scans and deadlines do to them.

Scans arrive as `PATROL_SCAN` events (contract, `patrol_reader`) and are kept as sent. A round is
evaluated again from its scans whenever one arrives for it, late uploads included, and when a
deadline falls due (a 1-second timer looks for rounds whose `next_deadline` has passed). What
changed raises or clears the round's alarms, which become a ticket with source `patrol`.
"""

from __future__ import annotations

import collections
import itertools
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, selectinload

from collector.lineprotocol import Point, Sink
from ground.clock import from_ms, to_ms
from ground.contract import Kind, Message
from ground.events import AlarmEvent
from ground.severity import Severity
from patrol import evaluation
from patrol.evaluation import ENDED, RoundStatus, Timing, VisitStatus
from patrol.schedule import occurrences
from patrol.timeline import patrol_checkpoint_point, patrol_round_point
from records.db import Database
from records.models import PatrolCheckpoint, PatrolPlan, PatrolRound, PatrolRoute, PatrolScan, PatrolVisit
from tickets.lifecycle import Source
from tickets.service import NewTicket, TicketService

log = logging.getLogger(__name__)

SCAN = "PATROL_SCAN"
FINDING = "PATROL_FINDING"
PLAN_AHEAD = timedelta(hours=24)  # planned rounds exist this long before they start
RETRIES = 10  # a scan the database refused is tried again this many times, a second apart
PENDING_FINDING = "finding_pending"  # kept, its ticket not yet made
# Reader times outside these are a broken clock: the scan is kept but matches no round.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)
UTC_ZONE = ZoneInfo("UTC")
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


def _utc(t: datetime) -> datetime:
    if t.tzinfo is None:
        raise PatrolError("start", "give the time with its offset (…Z or …+08:00)")
    return t.astimezone(UTC)


class PatrolService:
    """Plans rounds, checks every scan against them, and raises what was missed."""

    def __init__(
        self,
        db: Database,
        tickets: TicketService,
        emit: Callable[[list[AlarmEvent]], None],
        timing: Timing | None = None,
        zone: ZoneInfo = UTC_ZONE,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.db = db
        self.tickets = tickets
        self.emit = emit
        self.timing = timing or Timing()
        self.zone = zone
        self.clock = clock
        self.record: Sink | None = None  # where round outcomes go (the time-series store)
        # Scans, deadlines and people touch the same rounds from three threads; one at a time.
        self._lock = threading.RLock()
        self._retry: collections.deque[tuple[Message, int]] = collections.deque()

    # --- checkpoints, routes, plans ------------------------------------------------------------

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

    def add_route(self, route_id: str, site: str, name: str, stops: Sequence[RouteStop]) -> PatrolRoute:
        try:
            return self._add_route(route_id, site, name, stops)
        except IntegrityError:  # created at the same moment by another request
            raise Exists(f"route {route_id} exists already") from None

    def _add_route(self, route_id: str, site: str, name: str, stops: Sequence[RouteStop]) -> PatrolRoute:
        """A route over checkpoints of its site, in walking order, due at non-decreasing minutes."""
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

    def start_round(
        self, route_id: str, guard: str, start: datetime, guards: Sequence[str] = ()
    ) -> PatrolRound:
        """An ad-hoc round; a start in the past records a round walked with an offline reader."""
        with self._lock:
            with self.db.session() as s:
                route = s.get(PatrolRoute, route_id)
                if route is None:
                    raise PatrolError("route", f"no route {route_id}")
                crew = [guard, *(g for g in guards if g != guard)]
                new = self._new_round(route, crew, _utc(start), None)
                s.add(new)
                s.flush()
                round_id = new.id
            # Scans already uploaded for it (an offline reader docked before the round was entered).
            self._evaluate_ids([round_id])
        return self.round(round_id)

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

    # --- scans, findings, deadlines -------------------------------------------------------------

    def handle(self, messages: Sequence[Message]) -> None:
        """Collector handler: the patrol readers' scans and findings."""
        for m in messages:
            if m.kind is Kind.EVENT and m.device_type == "patrol_reader":
                code = m.body["code"]
                if code in (SCAN, FINDING):
                    self._apply(m)

    def _apply(self, m: Message, attempt: int = 0) -> None:
        try:
            self.scan(m)
        except OperationalError:
            # The database is locked or down: the timer tries again, a few times.
            if attempt < RETRIES:
                log.warning("could not record %s from %s/%s; will retry", m.body["code"], m.site, m.device_id)
                self._retry.append((m, attempt + 1))
            else:
                log.exception("gave up recording %s from %s/%s", m.body["code"], m.site, m.device_id)
        except Exception:
            log.exception("could not record %s from %s/%s", m.body["code"], m.site, m.device_id)

    def scan(self, m: Message) -> None:
        """Keep one scan or finding and apply it."""
        code, detail = m.body["code"], m.body["detail"]
        tag, guard = str(detail.get("tag") or "")[:128], detail.get("guard")
        guard = str(guard)[:100] if guard is not None else None
        at = from_ms(m.ts)
        events: list[AlarmEvent] = []
        with self._lock:
            with self.db.session() as s:
                again = s.scalars(
                    select(PatrolScan).where(
                        PatrolScan.site == m.site,
                        PatrolScan.reader == m.device_id,
                        PatrolScan.ts == at,
                        PatrolScan.tag == tag,
                        PatrolScan.code == code,
                    )
                ).first()
                if again is not None and again.outcome != PENDING_FINDING:
                    return  # the same event again (a redelivery): already applied
                cp = s.scalars(
                    select(PatrolCheckpoint).where(
                        PatrolCheckpoint.site == m.site, PatrolCheckpoint.tag == tag
                    )
                ).one_or_none()
                candidates = self._rounds_at(s, m.site, at, cp.id if cp else None)
                mine = [r for r in candidates if guard in r.guards]
                outcome = PENDING_FINDING if code == FINDING else "counted"
                if code == SCAN and again is None:
                    if cp is None:
                        outcome = "unknown_tag"
                        # Only where patrols are set up: a site with no checkpoints knows no tags.
                        if s.scalars(
                            select(PatrolCheckpoint.id).where(PatrolCheckpoint.site == m.site)
                        ).first():
                            events.append(self._unknown_tag(m, tag, guard))
                    elif candidates and not mine:
                        outcome = "guard_not_on_round"
                        events.append(self._stranger(candidates[0], m, tag, guard))
                    elif not candidates:
                        outcome = "no_round"
                if again is None:
                    again = PatrolScan(
                        site=m.site,
                        reader=m.device_id,
                        code=code,
                        tag=tag,
                        guard=guard,
                        ts=at,
                        received_at=self.clock(),
                        checkpoint_id=cp.id if cp else None,
                        round_id=mine[0].id if mine else None,
                        outcome=outcome,
                    )
                    s.add(again)
                    s.flush()
                scan_id = again.id
                round_ids = [r.id for r in mine]
                location = cp.location if cp else None
                checkpoint_id = cp.id if cp else None
            if code == FINDING:
                # The ticket first, then the mark: a finding whose ticket failed is tried again.
                self._finding(m, detail, checkpoint_id, location, round_ids[0] if round_ids else None)
                with self.db.session() as s:
                    row = s.get(PatrolScan, scan_id)
                    assert row is not None
                    row.outcome = "finding"
            elif round_ids:
                self._evaluate_ids(round_ids)
        if events:
            self.emit(events)

    def _rounds_at(self, s: Session, site: str, at: datetime, checkpoint_id: str | None) -> list[PatrolRound]:
        """Rounds of the site whose window holds `at` and whose route passes the checkpoint."""
        if checkpoint_id is None or not EARLIEST < at < LATEST:
            return []
        early = timedelta(seconds=self.timing.early_window_s)
        found = s.scalars(
            select(PatrolRound)
            .options(selectinload(PatrolRound.visits))
            .where(PatrolRound.site == site, PatrolRound.window_end >= at, PatrolRound.start <= at + early)
            .order_by(PatrolRound.start)
        ).all()
        return [r for r in found if any(v.checkpoint_id == checkpoint_id for v in r.visits)]

    def _unknown_tag(self, m: Message, tag: str, guard: str | None) -> AlarmEvent:
        """A tag no checkpoint of the site has: the site's one "unknown tags" ticket gathers them."""
        return AlarmEvent(
            "raised",
            m.site,
            "patrol_tag",
            "unknown-tags",
            "patrol_unknown_tag",
            Severity.ROUTINE,
            m.ts,
            "Unknown patrol tags",
            {"code": "PATROL_UNKNOWN_TAG", "tag": tag, "guard": guard, "reader": m.device_id},
            source=Source.PATROL.value,
        )

    def _stranger(self, r: PatrolRound, m: Message, tag: str, guard: str | None) -> AlarmEvent:
        """A scan on a round's route by a guard not on it: routine, on the round's ticket."""
        return AlarmEvent(
            "raised",
            r.site,
            "patrol_round",
            f"round-{r.id}",
            "patrol_guard_not_on_round",
            Severity.ROUTINE,
            m.ts,
            f"Patrol round {r.id}: scan by a guard not on it",
            {"code": "PATROL_GUARD_NOT_ON_ROUND", "tag": tag, "guard": guard, "reader": m.device_id},
            source=Source.PATROL.value,
            round_id=r.id,
        )

    def _finding(
        self,
        m: Message,
        detail: dict[str, Any],
        checkpoint_id: str | None,
        location: str | None,
        round_id: int | None,
    ) -> None:
        """A guard's finding: a ticket of its own, or corroboration of the device's open one."""
        text = str(detail.get("text") or "finding without text")
        guard = str(detail.get("guard") or m.device_id)
        device_id = detail.get("device_id")
        at = from_ms(m.ts)
        if isinstance(device_id, str) and device_id:
            open_ticket = self.tickets.open_for_device(m.site, device_id)
            if open_ticket is not None:
                self.tickets.corroborate(
                    open_ticket.id,
                    guard,
                    {
                        "text": text,
                        "checkpoint": checkpoint_id,
                        "round": round_id,
                        "reader": m.device_id,
                        "at": at.isoformat(),
                    },
                )
                return
        else:
            device_id = None
        where = f" at {checkpoint_id}" if checkpoint_id else ""
        self.tickets.open_ticket(
            NewTicket(
                site=m.site,
                title=f"Patrol finding: {text}"[:300],
                severity=Severity.ROUTINE,
                source=Source.PATROL,
                description=f"{text}\nReported by {guard}{where} at {at.isoformat()} (reader {m.device_id}).",
                device_id=device_id,
                location=location,
                reporter=guard,
                patrol_round_id=round_id,
            ),
            guard,
        )

    def sweep(self) -> int:
        """Timer: retry scans the database refused, then evaluate the rounds whose deadline passed."""
        for _ in range(len(self._retry)):
            self._apply(*self._retry.popleft())
        now = self.clock()
        with self.db.read() as s:
            due = list(
                s.scalars(
                    select(PatrolRound.id).where(
                        PatrolRound.next_deadline.is_not(None), PatrolRound.next_deadline <= now
                    )
                )
            )
        if due:
            self._evaluate_ids(due)
        return len(due)

    def _evaluate_ids(self, round_ids: Sequence[int]) -> None:
        """Evaluate rounds, each in its own transaction: one that fails cannot hold up the others."""
        for round_id in round_ids:
            events: list[AlarmEvent] = []
            points: list[Point] = []
            try:
                with self._lock, self.db.session() as s:
                    r = s.get(PatrolRound, round_id)
                    if r is not None:
                        self._evaluate(s, r, events, points)
            except Exception:
                log.exception("could not evaluate patrol round %d; trying again in a minute", round_id)
                self._postpone(round_id)
                continue
            if events:
                self.emit(events)
            if points and self.record is not None:
                self.record(points)

    def _postpone(self, round_id: int) -> None:
        try:
            with self.db.session() as s:
                r = s.get(PatrolRound, round_id)
                if r is not None:
                    r.next_deadline = self.clock() + timedelta(minutes=1)
        except Exception:
            log.exception("could not postpone patrol round %d", round_id)

    def _evaluate(self, s: Session, r: PatrolRound, events: list[AlarmEvent], points: list[Point]) -> None:
        """Evaluate one round at now; raise or clear its alarms for what changed."""
        now = self.clock()
        route = s.get(PatrolRoute, r.route_id)
        assert route is not None
        visits = list(r.visits)
        stops = [evaluation.Stop(v.checkpoint_id, v.due) for v in visits]
        earliest = r.start - timedelta(seconds=self.timing.early_window_s)
        rows = s.scalars(
            select(PatrolScan).where(
                PatrolScan.site == r.site,
                PatrolScan.ts >= earliest,
                PatrolScan.ts <= r.window_end,
                PatrolScan.checkpoint_id.in_({v.checkpoint_id for v in visits}),
                PatrolScan.code == SCAN,
            )
        ).all()
        scans = [evaluation.Scan(x.checkpoint_id or "", x.ts, x.guard) for x in rows if x.guard in r.guards]
        result = evaluation.evaluate(r.start, stops, scans, now, self.timing, r.created_at)
        before = {v.position: v.status for v in visits}
        was_missed = any(st == VisitStatus.MISSED for st in before.values())
        old_status = r.status
        for v, outcome in zip(visits, result.visits, strict=True):
            v.status, v.scanned_at, v.scanned_by, v.offset_s = (
                outcome.status.value,
                outcome.scanned_at,
                outcome.scanned_by,
                outcome.offset_s,
            )
            if outcome.status is VisitStatus.MISSED and before[v.position] != VisitStatus.MISSED:
                cp = s.get(PatrolCheckpoint, v.checkpoint_id)
                events.append(self._round_alarm(r, route, "checkpoint_missed", v, cp))
        r.status, r.started_at, r.next_deadline = result.status.value, result.started_at, result.next_deadline
        if r.status in ENDED and r.ended_at is None:
            r.ended_at = now
        if was_missed and not any(v.status == VisitStatus.MISSED for v in visits):
            events.append(self._round_clear(r, "checkpoint_missed", now))
        if result.not_started and not r.start_missed:
            r.start_missed = True
            events.append(self._round_alarm(r, route, "round_not_started", None, None))
        elif r.start_missed and result.started_at is not None:
            r.start_missed = False
            events.append(self._round_clear(r, "round_not_started", now))
        if r.status in ENDED and (old_status != r.status or before != {v.position: v.status for v in visits}):
            points.extend(self._outcome_points(r, visits))

    def _round_alarm(
        self,
        r: PatrolRound,
        route: PatrolRoute,
        rule: str,
        visit: PatrolVisit | None,
        cp: PatrolCheckpoint | None,
    ) -> AlarmEvent:
        if visit is None:
            title = f"Patrol {route.name}, guard {r.guard}: round not started"
            at = r.start + timedelta(seconds=self.timing.start_grace_s)
            detail: dict[str, Any] = {"code": "ROUND_NOT_STARTED", "round": r.id, "guard": r.guard}
        else:
            name = cp.name if cp else visit.checkpoint_id
            title = f"Patrol {route.name}, guard {r.guard}: checkpoint missed"
            at = visit.due + timedelta(seconds=self.timing.grace_s)
            detail = {
                "code": "CHECKPOINT_MISSED",
                "round": r.id,
                "guard": r.guard,
                "checkpoint": visit.checkpoint_id,
                "name": name,
                "due": visit.due.isoformat(),
                "location": cp.location if cp else None,
            }
        return AlarmEvent(
            "raised",
            r.site,
            "patrol_round",
            f"round-{r.id}",
            rule,
            Severity.MAJOR,
            # Two stops due together are two misses: distinct times, or the second looks replayed.
            to_ms(at) + (visit.position if visit else 0),
            title,
            detail,
            source=Source.PATROL.value,
            round_id=r.id,
        )

    def _round_clear(self, r: PatrolRound, rule: str, now: datetime) -> AlarmEvent:
        return AlarmEvent(
            "cleared",
            r.site,
            "patrol_round",
            f"round-{r.id}",
            rule,
            Severity.MAJOR,
            to_ms(now),
            "",
            {},
            source=Source.PATROL.value,
            round_id=r.id,
        )

    def _outcome_points(self, r: PatrolRound, visits: Sequence[PatrolVisit]) -> list[Point]:
        counts = {st.value: 0 for st in VisitStatus if st is not VisitStatus.PENDING}
        points = []
        for v in visits:
            counts[v.status] = counts.get(v.status, 0) + 1
            points.append(
                patrol_checkpoint_point(
                    r.site, r.route_id, r.guard, v.checkpoint_id, v.status, r.id, v.offset_s or 0.0, v.due
                )
            )
        counts["checkpoints"] = len(visits)
        points.append(patrol_round_point(r.site, r.route_id, r.guard, r.status, r.id, counts, r.start))
        return points

    # --- report --------------------------------------------------------------------------------

    def report(self, since: datetime, until: datetime, site: str | None = None) -> dict[str, Any]:
        """Completion and on-time rates per guard and per route over rounds that started in [since, until)."""
        by_guard: dict[str, dict[str, int]] = {}
        by_route: dict[str, dict[str, int]] = {}
        for r in self.rounds(site=site, since=since, until=until, limit=1_000_000):
            if r.status not in ENDED:
                continue
            on_time = sum(1 for v in r.visits if v.status == VisitStatus.ON_TIME)
            missed = sum(1 for v in r.visits if v.status == VisitStatus.MISSED)
            for key, table in [(g, by_guard) for g in r.guards] + [(r.route_id, by_route)]:
                row = table.setdefault(
                    key, {"rounds": 0, "completed": 0, "checkpoints": 0, "on_time": 0, "missed": 0}
                )
                row["rounds"] += 1
                row["completed"] += r.status == RoundStatus.COMPLETED
                row["checkpoints"] += len(r.visits)
                row["on_time"] += on_time
                row["missed"] += missed
        return {
            "from": since,
            "until": until,
            "site": site,
            "by_guard": [_rates("guard", k, v) for k, v in sorted(by_guard.items())],
            "by_route": [_rates("route", k, v) for k, v in sorted(by_route.items())],
        }


def _rates(name: str, key: str, row: dict[str, int]) -> dict[str, Any]:
    return {
        name: key,
        **row,
        "completion_rate": row["completed"] / row["rounds"] if row["rounds"] else None,
        "on_time_rate": row["on_time"] / row["checkpoints"] if row["checkpoints"] else None,
    }


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
