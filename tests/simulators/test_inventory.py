"""The demo's inventory: every simulated device has a place, and its alarms' tickets say where it is."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys

from api.schemas import DeviceCreate
from ground.contract import MAX_TS_MS, decode
from ground.events import AlarmEvent
from ground.severity import Severity
from records.db import Database
from records.devices import DeviceDirectory
from simulators.devices import MODELS, build_fleet
from simulators.inventory import PLACES, Placement, inventory
from simulators.publisher import SimulationPlan
from simulators.stream import messages
from tests.conftest import FedPipeline
from tickets.service import TicketFilter
from tickets.store import location_of

START = 1_795_749_124_000


def _published(plan: SimulationPlan, rounds: int = 2) -> set[tuple[str, str, str]]:
    """(site, device id, type) of every device that publishes in the plan's first rounds of reports."""
    fleet = build_fleet(plan.sites, plan.seed, plan.fault_rate_per_h)
    stream = messages(fleet, plan.seed, START, plan.rate)
    found = set()
    # Every device's first report is a full snapshot, so each one publishes within a round.
    for m in itertools.takewhile(lambda m: m.t_ms < START + rounds * len(fleet) * 1000 / plan.rate, stream):
        decoded = decode(m.topic, m.payload, 0, skew_ms=MAX_TS_MS)
        found.add((decoded.site, decoded.device_id, decoded.device_type))
    return found


def _where(p: Placement) -> str:
    return f"{p.building}, floor {p.floor}, {p.location}"


def test_every_device_the_fleet_publishes_for_is_placed_once() -> None:
    plan = SimulationPlan(sites=3, seed=7, rate=50.0)
    placed = inventory(plan)
    keys = [(p.site, p.device_id, p.device_type) for p in placed]
    assert len(keys) == len(set(keys))
    published = _published(plan)
    assert {s for s, _, _ in published} == {"site-01", "site-02", "site-03"}
    assert set(keys) == published


def test_every_device_type_has_a_place() -> None:
    assert set(PLACES) == set(MODELS)


def test_each_device_has_a_name_building_floor_and_location_the_api_would_accept() -> None:
    for p in inventory(SimulationPlan(sites=2)):
        assert all((p.name, p.building, p.floor, p.location)), p
        # The same limits as a registration through the API.
        assert DeviceCreate.model_validate(p.fields()).model_dump(exclude_none=True) == p.fields()


def test_plant_rooms_garage_and_roof_are_on_their_floors() -> None:
    floors = {(p.device_type, p.floor) for p in inventory(SimulationPlan(sites=2))}
    for device_type, floor in [
        ("garage_co", "B2"),
        ("sump_pit", "B2"),
        ("fire_pump", "B1"),
        ("water_pump", "B1"),
        ("chiller", "B1"),
        ("fire_water_tank", "RF"),
        ("water_tank", "RF"),
        ("elevator", "1"),
    ]:
        assert {f for t, f in floors if t == device_type} == {floor}, device_type
    lights = {int(f) for t, f in floors if t == "emergency_light"}
    assert lights and all(f >= 2 for f in lights)


def test_the_same_plan_gives_the_same_inventory_in_another_process() -> None:
    plan = SimulationPlan(sites=2, seed=3)
    ours = [p.fields() for p in inventory(plan)]
    assert ours == [p.fields() for p in inventory(plan)]
    script = (
        "import json; from simulators.inventory import inventory; "
        "from simulators.publisher import SimulationPlan; "
        "print(json.dumps([p.fields() for p in inventory(SimulationPlan(sites=2, seed=3))]))"
    )
    # Another hash seed: nothing may depend on Python's per-process string hashing.
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == ours
    # Another seed draws other lifts, so other building heights, but the same devices.
    other = inventory(SimulationPlan(sites=2, seed=4))
    assert [(p.site, p.device_id) for p in other] == [(o["site"], o["device_id"]) for o in ours]


def test_registering_twice_keeps_one_row_per_device_with_its_place(db: Database) -> None:
    directory = DeviceDirectory(db)
    placed = inventory(SimulationPlan(sites=1))
    for _ in range(2):  # a demo restarted on the same data folder
        for p in placed:
            directory.register(p.fields())
    rows = {(d.site, d.device_id): d for d in directory.list()}
    assert len(rows) == len(placed)
    for p in placed:
        row = rows[(p.site, p.device_id)]
        assert row.registered
        assert (row.name, row.building, row.floor, row.location) == (p.name, p.building, p.floor, p.location)


def test_a_simulated_fire_alarm_opens_a_ticket_that_says_where_the_panel_is(
    db: Database, pipeline: FedPipeline
) -> None:
    plan = SimulationPlan(sites=1, seed=1, fault_rate_per_h=60.0)
    placed = inventory(plan)
    directory = DeviceDirectory(db)
    for p in placed:
        directory.register(p.fields())
    [panel] = [p for p in placed if p.device_type == "fire_panel"]
    fleet = build_fleet(plan.sites, plan.seed, plan.fault_rate_per_h)
    # The simulated stream, as the collector would hand it on, up to the panel's first fire alarm.
    for m in itertools.islice(messages(fleet, plan.seed, START, plan.rate), 20_000):
        body = json.loads(m.payload)
        pipeline.deliver(m.topic, body, received_ms=m.t_ms)
        if m.topic.endswith(f"/{panel.device_id}/event") and body["code"] == "FIRE_ALARM":
            break
    else:
        raise AssertionError("the simulated panel raised no fire alarm")
    [ticket] = [t for t in pipeline.tickets.list(TicketFilter()) if t.rule == "fire_alarm"]
    assert ticket.device_id == panel.device_id
    assert ticket.location == _where(panel) == f"{panel.building}, floor 1, fire control room"
    assert ticket.title.endswith(f"— {panel.name}, {panel.building}")


def test_every_placed_device_gives_its_alarm_tickets_a_location(db: Database, pipeline: FedPipeline) -> None:
    placed = inventory(SimulationPlan(sites=2))
    directory = DeviceDirectory(db)
    for p in placed:
        directory.register(p.fields())
    for n, p in enumerate(placed):
        event = AlarmEvent(
            kind="raised",
            site=p.site,
            device_type=p.device_type,
            device_id=p.device_id,
            rule="test_rule",
            severity=Severity.MAJOR,
            ts=START + n,
            title="Test alarm",
            detail={},
        )
        ticket_id = pipeline.tickets.apply_alarm(event)
        assert ticket_id is not None
        ticket = pipeline.tickets.get(ticket_id)
        device = directory.get(p.site, p.device_id)
        assert ticket.location == _where(p) == location_of(device), p
