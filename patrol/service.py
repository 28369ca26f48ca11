"""Patrols: the one service the API, the collector and the timers use, wired from the modules beside it.

- `records.py`: checkpoints, routes, plans and rounds, created and read;
- `intake.py`: the readers' scans and findings (contract, `patrol_reader`), kept as sent and
  matched to rounds (`findings.py` makes a finding a ticket);
- `deadlines.py`: rounds judged again at now (after a scan, and by a 1-second timer when a
  deadline passes), what changed raised or cleared as alarm events (`alarms.py`), which become
  a ticket with source `patrol`;
- `report.py`: the completion report.

Scans, deadlines and people touch the same rounds from three threads; they take turns on one lock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from collector.lineprotocol import Sink
from ground.clock import utcnow
from ground.contract import Message
from ground.events import AlarmEvent
from patrol.deadlines import RoundJudge
from patrol.evaluation import RoundStatus, Timing
from patrol.intake import EARLIEST, LATEST, Intake
from patrol.outcomes import ReaderEvent
from patrol.records import Exists, NotFound, PatrolError, PatrolRecords, RouteStop
from patrol.report import completion_report
from patrol.verify import VerifyStops
from records.db import Database
from records.models import PatrolCheckpoint, PatrolPlan, PatrolRound, PatrolRoute
from tickets.service import TicketChange, TicketService

__all__ = ["EARLIEST", "LATEST", "Exists", "NotFound", "PatrolError", "PatrolService", "RouteStop"]

UTC_ZONE = ZoneInfo("UTC")


class PatrolService:
    """Plans rounds, checks every scan against them, and raises what was missed.

    `clock` is the wall clock deadlines are judged by (scans by the reader's own); a test can
    pass its own and drive `sweep()` through the deadlines without waiting.
    """

    def __init__(
        self,
        db: Database,
        tickets: TicketService,
        emit: Callable[[list[AlarmEvent]], None],
        timing: Timing | None = None,
        zone: ZoneInfo = UTC_ZONE,
        clock: Callable[[], datetime] = utcnow,
        record: Sink | None = None,
        sites: frozenset[str] | None = None,
    ) -> None:
        self.db = db
        self.tickets = tickets
        self.emit = emit
        self.timing = timing or Timing()
        self.zone = zone
        self.clock = clock
        self._lock = threading.RLock()
        self.records = PatrolRecords(db, self.timing, zone, clock, self._lock)
        # A worker of several judges only its own sites' rounds on the deadline timer.
        self.judge = RoundJudge(db, self.timing, clock, emit, self._lock, record, sites)
        self.verify = VerifyStops(db, tickets, self.timing, clock)
        self.intake = Intake(db, tickets, self.timing, clock, emit, self.judge.judge, self._lock, self.verify)

    @property
    def record(self) -> Sink | None:
        """Where round outcomes go (the time-series store)."""
        return self.judge.record

    # --- checkpoints, routes, plans ------------------------------------------------------------

    def add_checkpoint(self, cp: PatrolCheckpoint) -> PatrolCheckpoint:
        """Register a checkpoint; its id and its tag (on its site) must be new."""
        return self.records.add_checkpoint(cp)

    def checkpoints(self, site: str | None = None) -> Sequence[PatrolCheckpoint]:
        """Checkpoints, of one site or all."""
        return self.records.checkpoints(site)

    def checkpoint(self, checkpoint_id: str) -> PatrolCheckpoint:
        """One checkpoint."""
        return self.records.checkpoint(checkpoint_id)

    def add_route(self, route_id: str, site: str, name: str, stops: Sequence[RouteStop]) -> PatrolRoute:
        """A route over checkpoints of its site, in walking order, due at non-decreasing minutes."""
        return self.records.add_route(route_id, site, name, stops)

    def routes(self, site: str | None = None) -> Sequence[PatrolRoute]:
        """Routes, of one site or all."""
        return self.records.routes(site)

    def route(self, route_id: str) -> PatrolRoute:
        """One route."""
        return self.records.route(route_id)

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
        return self.records.add_plan(route_id, weekdays, start_times, guards, valid_from, valid_until)

    def plans(self, site: str | None = None) -> Sequence[PatrolPlan]:
        """Plans, of one site or all."""
        return self.records.plans(site)

    def plan(self, plan_id: int) -> PatrolPlan:
        """One plan."""
        return self.records.plan(plan_id)

    def schedule_plans(self) -> int:
        """Timer: create the planned rounds that start within the next day; returns how many were new."""
        return self.records.schedule_plans()

    # --- rounds --------------------------------------------------------------------------------

    def start_round(
        self, route_id: str, guard: str, start: datetime, guards: Sequence[str] = ()
    ) -> PatrolRound:
        """An ad-hoc round; a start in the past records a round walked with an offline reader."""
        with self._lock:
            round_id = self.records.enter_round(route_id, guard, start, guards)
            # Scans already uploaded for it (an offline reader docked before the round was entered).
            self.judge.judge([round_id])
        return self.records.round(round_id)

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
        return self.records.rounds(site, guard, status, since, until, limit)

    def round(self, round_id: int) -> PatrolRound:
        """One round with its checkpoints."""
        return self.records.round(round_id)

    def on_ticket_change(self, change: TicketChange) -> None:
        """Ticket listener: an alarm's new ticket adds a verify stop to the rounds passing its place now.

        Runs on the thread that changed the ticket; it takes no patrol lock (a stop is only added).
        """
        self.verify.on_ticket_change(change)

    # --- scans, findings, deadlines -------------------------------------------------------------

    def handle(self, messages: Sequence[Message]) -> None:
        """Collector handler: the patrol readers' scans and findings."""
        self.intake.handle(messages)

    def scan(self, m: Message) -> None:
        """Keep one scan or finding and apply it (any other message is not the patrols')."""
        event = ReaderEvent.of(m)
        if event is not None:
            self.intake.keep(event)

    def sweep(self) -> int:
        """Timer: retry scans the database refused, then judge the rounds whose deadline passed."""
        self.intake.retry()
        return self.judge.sweep()

    # --- report --------------------------------------------------------------------------------

    def report(self, since: datetime, until: datetime, site: str | None = None) -> dict[str, Any]:
        """Completion and on-time rates per guard and per route over rounds that started in [since, until)."""
        rounds = self.records.rounds(site=site, since=since, until=until, limit=1_000_000)
        return completion_report(rounds, since, until, site)
