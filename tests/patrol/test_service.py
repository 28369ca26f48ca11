"""The patrol service without a broker: decoded reader messages handed straight to it, a clock the
test sets, alarm events caught by a list, on a real records database (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from collector.lineprotocol import Point
from ground.clock import to_ms
from ground.contract import Message, decode
from ground.events import AlarmEvent
from ground.severity import Severity
from patrol.alarms import PatrolRule
from patrol.evaluation import RoundStatus, Timing, VisitStatus
from patrol.outcomes import ReaderCode, ScanOutcome
from patrol.service import PatrolService, RouteStop
from records.db import Database
from records.models import PatrolCheckpoint, PatrolScan
from tickets.lifecycle import Source
from tickets.service import NewTicket, TicketFilter, TicketService

SITE = "s1"
READER = "facility/v1/s1/patrol_reader/reader-1/event"
START = datetime(2026, 11, 27, 22, 0, tzinfo=UTC)  # the round's start
TIMING = Timing()  # on time within ±5 min, missed 15 min after the due time
ROUTE = [RouteStop("cp-a", 0), RouteStop("cp-b", 10), RouteStop("cp-c", 20)]


class Clock:
    """The wall clock the service judges deadlines by, set by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def at(minutes: float) -> datetime:
    """`minutes` after the round's start."""
    return START + timedelta(minutes=minutes)


def reader_event(
    when: datetime, tag: str, guard: str = "g-1", code: ReaderCode = ReaderCode.SCAN, **detail: str
) -> Message:
    """A patrol reader's event as the collector hands it on: decoded by the contract."""
    payload = {"ts": to_ms(when), "code": code.value, "detail": {"tag": tag, "guard": guard, **detail}}
    return decode(READER, json.dumps(payload).encode(), to_ms(when))


class Patrol:
    """A patrol service on the test's database, with its clock, its alarm events and its points."""

    def __init__(self, db: Database) -> None:
        self.clock = Clock(at(-60))
        self.events: list[AlarmEvent] = []
        self.points: list[Point] = []
        self.tickets = TicketService(db, clock=self.clock)
        self.service = PatrolService(
            db, self.tickets, self.events.extend, TIMING, clock=self.clock, record=self.points.extend
        )
        self.db = db

    def walk(self, minutes: float, tag: str, **kw: Any) -> None:
        """The reader reads `tag` at `minutes` after the start, and its message arrives at once."""
        self.clock.now = max(self.clock.now, at(minutes))
        self.service.handle([reader_event(at(minutes), tag, **kw)])

    def sweep_at(self, minutes: float) -> int:
        """The deadline timer fires at `minutes` after the start."""
        self.clock.now = at(minutes)
        return self.service.sweep()

    def statuses(self, round_id: int) -> list[str]:
        """Each checkpoint's status, then the round's."""
        r = self.service.round(round_id)
        return [v.status for v in r.visits] + [r.status]

    def outcomes(self) -> list[str]:
        """What became of every kept scan and finding, oldest first."""
        with self.db.read() as s:
            return list(s.scalars(select(PatrolScan.outcome).order_by(PatrolScan.id)))


@pytest.fixture
def patrol(db: Database) -> Patrol:
    """A patrol service with three checkpoints on one route (due at 0, 10 and 20 minutes)."""
    p = Patrol(db)
    for i, stop in enumerate(ROUTE):
        cp = stop.checkpoint
        p.service.add_checkpoint(
            PatrolCheckpoint(
                id=cp, site=SITE, name=f"Checkpoint {cp}", tag=f"tag-{cp}", location=f"B2 bay {i}"
            )
        )
    p.service.add_route("r-night", SITE, "Night B2", ROUTE)
    return p


def test_scans_on_time_and_late_by_the_readers_clock(patrol: Patrol) -> None:
    r = patrol.service.start_round("r-night", "g-1", START)
    assert patrol.statuses(r.id) == [VisitStatus.PENDING] * 3 + [RoundStatus.SCHEDULED]
    patrol.walk(1, "tag-cp-a")
    patrol.walk(17, "tag-cp-b")  # seven minutes after its due time: late, not yet missed
    assert patrol.statuses(r.id) == [
        VisitStatus.ON_TIME,
        VisitStatus.LATE,
        VisitStatus.PENDING,
        RoundStatus.IN_PROGRESS,
    ]
    visits = patrol.service.round(r.id).visits
    assert (visits[0].offset_s, visits[1].offset_s) == (60, 420)
    assert visits[1].scanned_by == "g-1" and visits[1].scanned_at == at(17)
    assert patrol.outcomes() == [ScanOutcome.COUNTED] * 2
    assert patrol.events == [] and patrol.points == []


def test_a_redelivered_scan_is_applied_once(patrol: Patrol) -> None:
    r = patrol.service.start_round("r-night", "g-1", START)
    patrol.walk(0, "tag-cp-a")
    patrol.walk(0.5, "tag-nobody-knows")
    # The broker delivers both again (QoS 1 without seq): nothing is kept or raised twice.
    patrol.walk(0, "tag-cp-a")
    patrol.walk(0.5, "tag-nobody-knows")
    assert patrol.outcomes() == [ScanOutcome.COUNTED, ScanOutcome.UNKNOWN_TAG]
    [unknown] = patrol.events
    assert (unknown.kind, unknown.rule, unknown.device_id) == (
        "raised",
        PatrolRule.UNKNOWN_TAG,
        "unknown-tags",
    )
    assert unknown.severity is Severity.ROUTINE and unknown.detail["tag"] == "tag-nobody-knows"
    assert patrol.statuses(r.id)[0] == VisitStatus.ON_TIME


def test_a_guard_not_on_the_round_and_a_scan_outside_any_round(patrol: Patrol) -> None:
    r = patrol.service.start_round("r-night", "g-1", START)
    patrol.walk(0, "tag-cp-a", guard="g-intruder")
    patrol.walk(200, "tag-cp-b")  # long after the round's window
    assert patrol.outcomes() == [ScanOutcome.GUARD_NOT_ON_ROUND, ScanOutcome.NO_ROUND]
    [stranger] = [e for e in patrol.events if e.rule == PatrolRule.GUARD_NOT_ON_ROUND]
    assert (stranger.device_id, stranger.round_id, stranger.severity) == (
        f"round-{r.id}",
        r.id,
        Severity.ROUTINE,
    )
    assert stranger.detail["code"] == "PATROL_GUARD_NOT_ON_ROUND"


def test_a_finding_opens_a_ticket_once(patrol: Patrol) -> None:
    r = patrol.service.start_round("r-night", "g-1", START)
    finding = {"code": ReaderCode.FINDING, "text": "fire door propped open"}
    patrol.walk(10, "tag-cp-b", **finding)
    patrol.walk(10, "tag-cp-b", **finding)  # redelivered
    [ticket] = patrol.tickets.list(TicketFilter(source=Source.PATROL))
    assert ticket.title == "Patrol finding: fire door propped open"
    assert (ticket.location, ticket.patrol_round_id, ticket.reporter) == ("B2 bay 1", r.id, "g-1")
    assert (ticket.severity, ticket.device_id) == (Severity.ROUTINE, None)
    assert patrol.outcomes() == [ScanOutcome.FINDING]
    # A finding is no visit: the checkpoint waits for its scan.
    assert patrol.statuses(r.id)[1] == VisitStatus.PENDING


def test_a_finding_naming_a_device_with_an_open_ticket_corroborates_it(patrol: Patrol) -> None:
    lamp = patrol.tickets.open_ticket(NewTicket(SITE, "Lamp flickering", device_id="light-b2-07"), "occupant")
    patrol.walk(0, "tag-cp-a", code=ReaderCode.FINDING, text="lamp out", device_id="light-b2-07")
    assert patrol.tickets.list(TicketFilter(source=Source.PATROL)) == []
    ticket = patrol.tickets.get(lamp.id)
    assert ticket.occurrences == 2
    [corroborated] = [e for e in ticket.audit if e.action == "corroborated"]
    assert corroborated.actor == "g-1"
    assert corroborated.detail["text"] == "lamp out" and corroborated.detail["checkpoint"] == "cp-a"


def test_the_sweep_raises_a_missed_checkpoint_and_a_late_upload_clears_it(patrol: Patrol) -> None:
    r = patrol.service.start_round("r-night", "g-1", START)
    patrol.walk(0, "tag-cp-a")
    patrol.walk(20, "tag-cp-c")
    assert patrol.sweep_at(24.9) == 0  # cp-b (due at 10) is missed 15 minutes after
    assert patrol.events == []
    assert patrol.sweep_at(25) == 1
    [missed] = patrol.events
    assert (missed.kind, missed.rule, missed.severity) == (
        "raised",
        PatrolRule.CHECKPOINT_MISSED,
        Severity.MAJOR,
    )
    assert (missed.device_type, missed.device_id, missed.round_id) == ("patrol_round", f"round-{r.id}", r.id)
    assert missed.source == Source.PATROL and missed.ts == to_ms(at(25)) + 1  # + its position
    assert missed.detail["checkpoint"] == "cp-b" and missed.detail["location"] == "B2 bay 1"
    assert patrol.statuses(r.id) == [
        VisitStatus.ON_TIME,
        VisitStatus.MISSED,
        VisitStatus.ON_TIME,
        RoundStatus.INCOMPLETE,
    ]
    assert patrol.sweep_at(60) == 0  # an ended round has no deadline left
    # The round's end went to the dashboards: a point per checkpoint and one for the round.
    assert [line.split(",", 1)[0] for line, _ in patrol.points] == ["patrol_checkpoints"] * 3 + [
        "patrol_rounds"
    ]
    assert 'status="incomplete"' in patrol.points[-1][0]

    # The reader docks: it had read cp-b at 12 minutes. The miss is undone and its alarm cleared.
    patrol.walk(12, "tag-cp-b")
    cleared = patrol.events[-1]
    assert (cleared.kind, cleared.rule, cleared.device_id) == (
        "cleared",
        PatrolRule.CHECKPOINT_MISSED,
        f"round-{r.id}",
    )
    assert patrol.statuses(r.id) == [VisitStatus.ON_TIME] * 3 + [RoundStatus.COMPLETED]


def test_the_sweep_raises_a_round_not_started(patrol: Patrol) -> None:
    r = patrol.service.start_round("r-night", "g-1", START)
    assert patrol.sweep_at(14) == 0
    assert patrol.sweep_at(15) == 1
    # Its first checkpoint, due at the start, is missed at the same moment.
    missed, not_started = patrol.events
    assert missed.rule == PatrolRule.CHECKPOINT_MISSED and missed.detail["checkpoint"] == "cp-a"
    assert (not_started.kind, not_started.rule) == ("raised", PatrolRule.ROUND_NOT_STARTED)
    assert (not_started.ts, not_started.severity) == (to_ms(at(15)), Severity.MAJOR)
    assert not_started.detail == {"code": "ROUND_NOT_STARTED", "round": r.id, "guard": "g-1"}
    patrol.walk(16, "tag-cp-b")  # started after all: that alarm clears, the missed checkpoint stays
    assert [(e.kind, e.rule) for e in patrol.events[2:]] == [("cleared", PatrolRule.ROUND_NOT_STARTED)]
    assert patrol.statuses(r.id)[:2] == [VisitStatus.MISSED, VisitStatus.LATE]


def test_a_round_entered_after_its_walk_waits_for_the_upload(patrol: Patrol) -> None:
    patrol.clock.now = at(120)
    r = patrol.service.start_round("r-night", "g-1", START)
    assert patrol.sweep_at(120 + 5 / 60) == 0  # the settling time: nothing missed yet
    patrol.walk(0, "tag-cp-a")
    patrol.sweep_at(121)
    assert patrol.statuses(r.id) == [
        VisitStatus.ON_TIME,
        VisitStatus.MISSED,
        VisitStatus.MISSED,
        RoundStatus.INCOMPLETE,
    ]
    assert {e.rule for e in patrol.events} == {PatrolRule.CHECKPOINT_MISSED}
    assert len(patrol.events) == 2


def test_the_report_counts_rounds_that_ended(patrol: Patrol) -> None:
    walked = patrol.service.start_round("r-night", "g-1", START, ["g-2"])
    skipped = patrol.service.start_round("r-night", "g-3", at(60))
    patrol.service.start_round("r-night", "g-1", at(600))  # not yet walked: left out
    for minutes, tag in [(0, "tag-cp-a"), (11, "tag-cp-b"), (26, "tag-cp-c")]:
        patrol.walk(minutes, tag)
    patrol.sweep_at(120)
    assert patrol.service.round(walked.id).status == RoundStatus.COMPLETED
    assert patrol.service.round(skipped.id).status == RoundStatus.INCOMPLETE
    report = patrol.service.report(START, at(24 * 60), SITE)
    assert (report["from"], report["until"], report["site"]) == (START, at(24 * 60), SITE)
    g1, g2, g3 = report["by_guard"]
    assert g1 == {
        "guard": "g-1",
        "rounds": 1,
        "completed": 1,
        "checkpoints": 3,
        "on_time": 2,  # cp-c six minutes late
        "missed": 0,
        "completion_rate": 1.0,
        "on_time_rate": pytest.approx(2 / 3),
    }
    assert g2 == {**g1, "guard": "g-2"}  # a round shared counts for each guard on it
    assert (g3["guard"], g3["completion_rate"], g3["on_time_rate"], g3["missed"]) == ("g-3", 0.0, 0.0, 3)
    [route] = report["by_route"]
    assert (route["route"], route["rounds"], route["completed"], route["checkpoints"]) == ("r-night", 2, 1, 6)
    assert route["completion_rate"] == 0.5 and route["on_time_rate"] == pytest.approx(2 / 6)
    assert patrol.service.report(at(24 * 60), at(48 * 60), SITE)["by_guard"] == []
