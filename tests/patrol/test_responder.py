"""What a responder learns from the patrols: an SOS's last checkpoint, and alarms verified on site
by a round walking there now (real records, SQLite and PostgreSQL, a clock the test sets)."""

from __future__ import annotations

import json

import pytest

from ground.clock import to_ms
from ground.contract import decode
from ground.events import AlarmEvent
from ground.severity import Severity
from patrol.evaluation import RoundStatus, VisitStatus
from patrol.outcomes import ReaderCode, ScanOutcome
from patrol.places import AlarmPlace, closeness, nearest
from records.db import Database
from records.models import Device, PatrolCheckpoint
from tests.patrol.test_service import READER, ROUTE, SITE, START, Patrol, at
from tickets.lifecycle import Source
from tickets.service import TicketFilter

PLACES = {
    "cp-a": ("Lobby", "Tower A", "G", "main lobby"),
    "cp-b": ("B2 ramp", "Tower A", "B2", "ramp"),
    "cp-c": ("B2 pump room", "Tower A", "B2", "pump room"),
}


@pytest.fixture
def patrol(db: Database) -> Patrol:
    """A patrol service whose checkpoints have a building and a floor, and whose tickets ask it to verify."""
    p = Patrol(db)
    p.tickets.listeners.append(p.service.on_ticket_change)
    for stop in ROUTE:
        name, building, floor, location = PLACES[stop.checkpoint]
        p.service.add_checkpoint(
            PatrolCheckpoint(
                id=stop.checkpoint,
                site=SITE,
                name=name,
                tag=f"tag-{stop.checkpoint}",
                location=location,
                building=building,
                floor=floor,
            )
        )
    p.service.add_route("r-night", SITE, "Night", ROUTE)
    with db.session() as s:
        s.add(Device(site=SITE, device_id="sump-1", device_type="sump_pit", building="Tower A", floor="B2"))
        s.add(Device(site=SITE, device_id="lift-1", device_type="elevator", building="Tower B", floor="B2"))
    return p


def sensor_alarm(minutes: float, device_id: str = "sump-1", rule: str = "sump_high") -> AlarmEvent:
    """A sensor's alarm raised `minutes` after the round's start."""
    return AlarmEvent(
        kind="raised",
        site=SITE,
        device_type="sump_pit",
        device_id=device_id,
        rule=rule,
        severity=Severity.MAJOR,
        ts=to_ms(at(minutes)),
        title="Sump pit high",
        detail={"level_pct": 85},
    )


def raise_at(patrol: Patrol, minutes: float, event: AlarmEvent) -> int:
    """The alarm reaches tickets at `minutes` after the start; its ticket's id."""
    patrol.clock.now = at(minutes)
    ticket_id = patrol.tickets.apply_alarm(event)
    assert ticket_id is not None
    return ticket_id


def test_places_match_by_location_first_then_by_floor() -> None:
    cps = [
        PatrolCheckpoint(id=cp, name=n, building=b, floor=f, location=loc)
        for cp, (n, b, f, loc) in PLACES.items()
    ]
    on_b2 = AlarmPlace("Tower A", "B2", None)
    assert [closeness(on_b2, c) for c in cps] == [0, 1, 1]
    assert nearest(on_b2, cps) is cps[1]  # the first on the floor, in walking order
    assert nearest(AlarmPlace("tower a", "B2", "Pump Room "), cps) is cps[2]  # its own location
    assert nearest(AlarmPlace(None, None, None, ticket_location="main lobby"), cps) is cps[0]
    assert nearest(AlarmPlace("Tower B", "B2", "ramp-2"), cps) is None


def test_an_alarm_on_the_floor_of_a_round_in_progress_adds_a_verify_stop(patrol: Patrol) -> None:
    r = patrol.service.start_round("r-night", "g-1", START)
    raise_at(patrol, 0.5, sensor_alarm(0.5))  # the round has not started: nothing to add
    assert patrol.service.round(r.id).verify_stops == []
    patrol.walk(1, "tag-cp-a")  # started
    ticket_id = raise_at(patrol, 2, sensor_alarm(2, "sump-2"))
    assert patrol.service.round(r.id).verify_stops == []  # sump-2 is nowhere known
    with patrol.db.session() as s:
        s.add(Device(site=SITE, device_id="sump-3", device_type="sump_pit", building="Tower A", floor="B2"))
    ticket_id = raise_at(patrol, 3, sensor_alarm(3, "sump-3"))
    [stop] = patrol.service.round(r.id).verify_stops
    assert (stop.checkpoint_id, stop.ticket_id, stop.device_id, stop.scanned_at) == (
        "cp-b",
        ticket_id,
        "sump-3",
        None,
    )
    # Another building's B2, and an offline device, ask for nothing.
    raise_at(patrol, 4, sensor_alarm(4, "lift-1", "entrapment"))
    raise_at(patrol, 4, sensor_alarm(4, "sump-1", "offline"))
    assert len(patrol.service.round(r.id).verify_stops) == 1


def test_the_guards_scan_without_a_finding_says_checked_nothing_found(patrol: Patrol) -> None:
    r = patrol.service.start_round("r-night", "g-1", START)
    patrol.walk(1, "tag-cp-a")
    ticket_id = raise_at(patrol, 2, sensor_alarm(2))
    patrol.walk(6, "tag-cp-b")
    [stop] = patrol.service.round(r.id).verify_stops
    assert (stop.scanned_at, stop.scanned_by, stop.finding) == (at(6), "g-1", None)
    [verified] = [e for e in patrol.tickets.get(ticket_id).audit if e.action == "verified"]
    assert verified.actor == "g-1"
    assert verified.detail["result"] == "checked, nothing found" and verified.detail["found"] is False
    assert (verified.detail["checkpoint"], verified.detail["round"]) == ("cp-b", r.id)
    patrol.walk(7, "tag-cp-b")  # read again: the stop was served once
    assert [e.action for e in patrol.tickets.get(ticket_id).audit].count("verified") == 1


def test_a_finding_at_the_verify_stop_goes_on_the_alarms_ticket(patrol: Patrol) -> None:
    r = patrol.service.start_round("r-night", "g-1", START)
    patrol.walk(1, "tag-cp-a")
    ticket_id = raise_at(patrol, 2, sensor_alarm(2))
    finding = {"code": ReaderCode.FINDING, "text": "water on the floor by pump 2"}
    patrol.walk(6, "tag-cp-b", **finding)
    patrol.walk(6, "tag-cp-b", **finding)  # redelivered
    [stop] = patrol.service.round(r.id).verify_stops
    assert (stop.scanned_at, stop.finding) == (at(6), "water on the floor by pump 2")
    [verified] = [e for e in patrol.tickets.get(ticket_id).audit if e.action == "verified"]
    assert verified.detail["result"] == "water on the floor by pump 2" and verified.detail["found"] is True
    # On the alarm's ticket, not a ticket of its own.
    assert patrol.tickets.list(TicketFilter(source=Source.PATROL)) == []


def test_a_finding_soon_after_the_verifying_scan_says_what_was_found(patrol: Patrol) -> None:
    patrol.service.start_round("r-night", "g-1", START)
    patrol.walk(1, "tag-cp-a")
    ticket_id = raise_at(patrol, 2, sensor_alarm(2))
    patrol.walk(6, "tag-cp-b")
    patrol.walk(7, "tag-cp-b", code=ReaderCode.FINDING, text="pump 2 tripped")
    results = [e.detail["result"] for e in patrol.tickets.get(ticket_id).audit if e.action == "verified"]
    assert results == ["checked, nothing found", "pump 2 tripped"]


def test_a_verify_stop_is_extra_it_makes_a_round_neither_late_nor_missed(patrol: Patrol) -> None:
    r = patrol.service.start_round("r-night", "g-1", START)
    patrol.walk(1, "tag-cp-a")
    raise_at(patrol, 2, sensor_alarm(2))
    patrol.walk(10, "tag-cp-b")  # on its own time: it serves the round's stop and the verify stop
    patrol.walk(20, "tag-cp-c")
    assert patrol.statuses(r.id) == [VisitStatus.ON_TIME] * 3 + [RoundStatus.COMPLETED]
    assert patrol.service.round(r.id).verify_stops[0].scanned_at == at(10)
    assert patrol.outcomes() == [ScanOutcome.COUNTED] * 3


def test_a_detour_to_verify_leaves_the_rounds_own_stops_as_they_were(patrol: Patrol) -> None:
    r = patrol.service.start_round("r-night", "g-1", START)
    patrol.walk(1, "tag-cp-a")
    with patrol.db.session() as s:
        s.add(Device(site=SITE, device_id="pump-9", device_type="sump_pit", location="Pump room"))
    ticket_id = raise_at(patrol, 2, sensor_alarm(2, "pump-9"))
    patrol.walk(3, "tag-cp-c")  # straight to the pump room, 17 minutes before it is due
    assert patrol.service.round(r.id).verify_stops[0].scanned_at == at(3)
    assert [e.action for e in patrol.tickets.get(ticket_id).audit] == ["open", "verified"]
    patrol.walk(10, "tag-cp-b")
    patrol.walk(20, "tag-cp-c")
    # Not early at cp-c, no wrong order: the detour is the verify stop's alone.
    assert patrol.statuses(r.id) == [VisitStatus.ON_TIME] * 3 + [RoundStatus.COMPLETED]
    assert patrol.outcomes() == [ScanOutcome.COUNTED, ScanOutcome.VERIFIED] + [ScanOutcome.COUNTED] * 2
    assert patrol.events == []


def test_an_unserved_verify_stop_stays_pending_and_raises_nothing(patrol: Patrol) -> None:
    r = patrol.service.start_round("r-night", "g-1", START)
    patrol.walk(1, "tag-cp-a")
    with patrol.db.session() as s:
        s.add(Device(site=SITE, device_id="pump-9", device_type="sump_pit", location="Pump room"))
    raise_at(patrol, 2, sensor_alarm(2, "pump-9"))
    patrol.walk(10, "tag-cp-b")
    patrol.sweep_at(60)  # cp-c never scanned: missed by the round, not by its verify stop
    assert patrol.statuses(r.id) == [
        VisitStatus.ON_TIME,
        VisitStatus.ON_TIME,
        VisitStatus.MISSED,
        "incomplete",
    ]
    [stop] = patrol.service.round(r.id).verify_stops
    assert stop.scanned_at is None
    assert [e.detail.get("checkpoint") for e in patrol.events] == ["cp-c"]


def test_an_sos_shows_the_last_checkpoint_its_reader_scanned(patrol: Patrol) -> None:
    patrol.service.start_round("r-night", "g-1", START)
    patrol.walk(1, "tag-cp-a")
    patrol.walk(9, "tag-cp-b")
    sos_at = at(11)
    sos = AlarmEvent(
        kind="raised",
        site=SITE,
        device_type="patrol_reader",
        device_id="reader-1",
        rule="sos",
        severity=Severity.EMERGENCY,
        ts=to_ms(sos_at),
        title="SOS",
        detail={"code": "SOS", "state": None, "detail": {"guard": "g-1"}},
    )
    patrol.clock.now = sos_at
    ticket_id = patrol.tickets.apply_alarm(sos)
    assert ticket_id is not None
    payload = {"ts": to_ms(sos_at), "code": "SOS", "detail": {"guard": "g-1"}}
    message = decode(READER, json.dumps(payload).encode(), to_ms(sos_at))
    patrol.service.handle([message])
    patrol.service.handle([message])  # replayed: said once
    t = patrol.tickets.get(ticket_id)
    assert t.location == "B2 ramp, Tower A, floor B2, ramp"
    assert (
        t.description
        == "Last scan: B2 ramp (cp-b), Tower A, floor B2, ramp, at 2026-11-27 22:09:00 UTC by g-1"
    )
    [where] = [e for e in t.audit if e.action == "whereabouts"]
    assert (where.detail["checkpoint"], where.detail["name"]) == ("cp-b", "B2 ramp")
