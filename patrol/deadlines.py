"""Rounds judged again at now, and what changed raised or cleared as alarm events.

A round is judged from all its scans whenever one arrives for it (late uploads included), when
it is entered, and when its `next_deadline` passes: a 1-second timer sweeps for those, so
deadlines survive a restart without a job each. A checkpoint newly missed and a round newly not
started raise a major alarm on the round; a late upload that fills the gap clears it. A round
that ended, or whose ending changed, is recorded for dashboards.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from collector.lineprotocol import Point, Sink
from ground.events import AlarmEvent
from patrol import alarms, evaluation
from patrol.alarms import PatrolRule
from patrol.evaluation import ENDED, Timing, VisitStatus
from patrol.outcomes import ReaderCode, ScanOutcome
from patrol.timeline import patrol_checkpoint_point, patrol_round_point
from records.db import Database
from records.models import PatrolCheckpoint, PatrolRound, PatrolRoute, PatrolScan, PatrolVisit

log = logging.getLogger(__name__)

POSTPONE = timedelta(minutes=1)  # a round whose judging failed is tried again this much later


class RoundJudge:
    """Judges rounds from their scans at now, raising what was missed and recording what ended."""

    def __init__(
        self,
        db: Database,
        timing: Timing,
        clock: Callable[[], datetime],
        emit: Callable[[list[AlarmEvent]], None],
        lock: threading.RLock,
        record: Sink | None = None,
        sites: frozenset[str] | None = None,
    ) -> None:
        self.db = db
        self.sites = sites  # whose rounds the sweep judges; None: every site
        self.timing = timing
        self.clock = clock
        self.emit = emit
        self.record = record  # where round outcomes go (the time-series store)
        self._lock = lock

    def due(self) -> list[int]:
        """The rounds whose next deadline has passed."""
        now = self.clock()
        q = select(PatrolRound.id).where(
            PatrolRound.next_deadline.is_not(None), PatrolRound.next_deadline <= now
        )
        if self.sites is not None:
            q = q.where(PatrolRound.site.in_(sorted(self.sites)))
        with self.db.read() as s:
            return list(s.scalars(q))

    def sweep(self) -> int:
        """Judge the rounds whose deadline passed; returns how many."""
        due = self.due()
        if due:
            self.judge(due)
        return len(due)

    def judge(self, round_ids: Sequence[int]) -> None:
        """Judge rounds, each in its own transaction: one that fails cannot hold up the others."""
        for round_id in round_ids:
            events: list[AlarmEvent] = []
            points: list[Point] = []
            try:
                with self._lock, self.db.session() as s:
                    r = s.get(PatrolRound, round_id)
                    if r is not None:
                        self._judge(s, r, events, points)
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
                    r.next_deadline = self.clock() + POSTPONE
        except Exception:
            log.exception("could not postpone patrol round %d", round_id)

    def _judge(self, s: Session, r: PatrolRound, events: list[AlarmEvent], points: list[Point]) -> None:
        """Judge one round at now; raise or clear its alarms for what changed."""
        now = self.clock()
        route = s.get(PatrolRoute, r.route_id)
        assert route is not None
        visits = list(r.visits)
        stops = [evaluation.Stop(v.checkpoint_id, v.due) for v in visits]
        scans = self._scans(s, r, visits)
        result = evaluation.evaluate(r.start, stops, scans, now, self.timing, r.created_at)
        before = {v.position: v.status for v in visits}
        was_missed = VisitStatus.MISSED in before.values()
        old_status = r.status
        for v, outcome in zip(visits, result.visits, strict=True):
            v.status, v.scanned_at, v.scanned_by, v.offset_s = (
                outcome.status,
                outcome.scanned_at,
                outcome.scanned_by,
                outcome.offset_s,
            )
            if outcome.status is VisitStatus.MISSED and before[v.position] != VisitStatus.MISSED:
                cp = s.get(PatrolCheckpoint, v.checkpoint_id)
                events.append(alarms.checkpoint_missed(r, route.name, v, cp, self.timing))
        r.status, r.started_at, r.next_deadline = result.status, result.started_at, result.next_deadline
        if r.status in ENDED and r.ended_at is None:
            r.ended_at = now
        if was_missed and not any(v.status == VisitStatus.MISSED for v in visits):
            events.append(alarms.cleared(r, PatrolRule.CHECKPOINT_MISSED, now))
        if result.not_started and not r.start_missed:
            r.start_missed = True
            events.append(alarms.round_not_started(r, route.name, self.timing))
        elif r.start_missed and result.started_at is not None:
            r.start_missed = False
            events.append(alarms.cleared(r, PatrolRule.ROUND_NOT_STARTED, now))
        if r.status in ENDED and (old_status != r.status or before != {v.position: v.status for v in visits}):
            points.extend(_outcome_points(r, visits))

    def _scans(self, s: Session, r: PatrolRound, visits: Sequence[PatrolVisit]) -> list[evaluation.Scan]:
        """The scans that can count for the round: its guards', at its checkpoints, within its window."""
        earliest = r.start - timedelta(seconds=self.timing.early_window_s)
        rows = s.scalars(
            select(PatrolScan).where(
                PatrolScan.site == r.site,
                PatrolScan.ts >= earliest,
                PatrolScan.ts <= r.window_end,
                PatrolScan.checkpoint_id.in_({v.checkpoint_id for v in visits}),
                PatrolScan.code == ReaderCode.SCAN.value,
                PatrolScan.outcome != ScanOutcome.VERIFIED.value,
            )
        ).all()
        return [evaluation.Scan(x.checkpoint_id or "", x.ts, x.guard) for x in rows if x.guard in r.guards]


def _outcome_points(r: PatrolRound, visits: Sequence[PatrolVisit]) -> list[Point]:
    """An ended round for dashboards: a point per checkpoint and one for the round with its counts."""
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
