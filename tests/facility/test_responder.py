"""What a responder needs, through the pipeline and the patrols as the collector hands them a message:
every fire panel component on its ticket, an SOS's last checkpoint, an alarm verified on site."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from ground.clock import from_ms, now_ms
from ground.contract import decode
from patrol.service import PatrolService, RouteStop
from records.db import Database
from records.devices import DeviceDirectory
from records.models import PatrolCheckpoint
from tests.conftest import FedPipeline
from tickets.service import TicketFilter

PANEL = "facility/v1/s1/fire_panel/fp-1/event"
READER = "facility/v1/s1/patrol_reader/pr-7/event"
SUMP = "facility/v1/s1/sump_pit/sump-b2/telemetry"


class Site:
    """A pipeline and a patrol service wired as `facility serve` wires them, fed one message at a time."""

    def __init__(self, fed: FedPipeline, db: Database) -> None:
        self.fed = fed
        self.tickets = fed.tickets
        self.patrol = PatrolService(db, fed.tickets, fed.pipeline.submit)
        fed.tickets.listeners.append(self.patrol.on_ticket_change)
        self.seq = 0

    def deliver(self, topic: str, payload: dict[str, Any]) -> None:
        """One message, decoded, to the pipeline and then to the patrols, as the collector's handlers run."""
        self.seq += 1
        m = decode(topic, json.dumps({"seq": self.seq, **payload}).encode(), now_ms())
        self.fed.pipeline.handle([m])
        self.patrol.handle([m])

    def fire(self, ts: int, state: str, component: str) -> None:
        self.deliver(
            PANEL,
            {
                "ts": ts,
                "code": "FIRE_ALARM",
                "state": state,
                "detail": {"zone": "3F", "component": component},
            },
        )

    def read(self, ts: int, code: str, **detail: str) -> None:
        self.deliver(READER, {"ts": ts, "code": code, "detail": {"guard": "g-12", **detail}})


@pytest.fixture
def site(pipeline: FedPipeline, db: Database) -> Site:
    """A site with a B2 patrol route over checkpoints that know their building and floor."""
    s = Site(pipeline, db)
    for cp, name, floor, location in [
        ("cp-lobby", "Lobby", "G", "main lobby"),
        ("cp-ramp", "B2 ramp", "B2", "ramp"),
        ("cp-pumps", "B2 pump room", "B2", "pump room"),
    ]:
        s.patrol.add_checkpoint(
            PatrolCheckpoint(
                id=cp,
                site="s1",
                name=name,
                tag=f"tag-{cp}",
                location=location,
                building="Tower A",
                floor=floor,
            )
        )
    s.patrol.add_route(
        "r-night",
        "s1",
        "Night",
        [RouteStop("cp-lobby", 0), RouteStop("cp-ramp", 5), RouteStop("cp-pumps", 10)],
    )
    return s


def test_a_fire_alarm_stays_until_its_last_component_clears_and_lists_both(site: Site) -> None:
    t0 = now_ms()
    site.fire(t0, "raised", "smoke-0031")
    site.fire(t0 + 1000, "raised", "smoke-0032")
    site.fire(t0 + 2000, "cleared", "smoke-0031")
    [alarm] = site.tickets.alarms(active_only=True)
    assert (alarm.rule, alarm.count) == ("fire_alarm", 2)
    [ticket] = site.tickets.list(TicketFilter())
    assert ticket.description == "Component smoke-0031\nComponent smoke-0032"
    site.fire(t0 + 3000, "cleared", "smoke-0032")
    assert site.tickets.alarms(active_only=True) == []
    [alarm] = site.tickets.alarms(active_only=False)
    assert alarm.cleared_at == from_ms(t0 + 3000)
    assert site.tickets.get(ticket.id).description == "Component smoke-0031\nComponent smoke-0032"


def test_an_sos_ticket_shows_the_checkpoint_scanned_last(site: Site) -> None:
    t0 = now_ms()
    site.read(t0, "PATROL_SCAN", tag="tag-cp-lobby")
    site.read(t0 + 1000, "PATROL_SCAN", tag="tag-cp-ramp")
    site.read(t0 + 2000, "SOS")
    [ticket] = site.tickets.list(TicketFilter())
    t = site.tickets.get(ticket.id)
    assert (t.rule, t.severity) == ("sos", "emergency")
    assert t.location == "B2 ramp, Tower A, floor B2, ramp"
    assert "Last scan: B2 ramp (cp-ramp), Tower A, floor B2, ramp" in (t.description or "")
    [where] = [e for e in t.audit if e.action == "whereabouts"]
    assert (where.detail["name"], where.detail["location"]) == ("B2 ramp", "Tower A, floor B2, ramp")


@pytest.mark.parametrize("finding", [None, "water over the sump's rim"])
def test_an_alarm_on_the_floor_of_a_round_in_progress_is_verified_on_site(
    site: Site, db: Database, finding: str | None
) -> None:
    DeviceDirectory(db).register(
        {
            "site": "s1",
            "device_id": "sump-b2",
            "device_type": "sump_pit",
            "building": "Tower A",
            "floor": "B2",
        }
    )
    t0 = now_ms()
    r = site.patrol.start_round("r-night", "g-12", from_ms(t0) - timedelta(minutes=1))
    site.read(t0, "PATROL_SCAN", tag="tag-cp-lobby")  # the round is in progress
    site.deliver(SUMP, {"ts": t0 + 1000, "metrics": {"level_pct": 97}})  # sump_flooding at once
    [ticket] = site.tickets.list(TicketFilter(device_id="sump-b2"))
    [stop] = site.patrol.round(r.id).verify_stops
    assert (stop.checkpoint_id, stop.ticket_id, stop.scanned_at) == ("cp-ramp", ticket.id, None)
    if finding is None:
        site.read(t0 + 2000, "PATROL_SCAN", tag="tag-cp-ramp")
    else:
        site.read(t0 + 2000, "PATROL_FINDING", tag="tag-cp-ramp", text=finding)
    [verified] = [e for e in site.tickets.get(ticket.id).audit if e.action == "verified"]
    assert verified.actor == "g-12"
    assert verified.detail["result"] == (finding or "checked, nothing found")
    [stop] = site.patrol.round(r.id).verify_stops
    assert stop.scanned_at == from_ms(t0 + 2000) and stop.finding == finding
    assert len(site.tickets.list(TicketFilter())) == 1  # the finding opened no ticket of its own
