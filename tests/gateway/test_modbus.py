"""The pump room's PLC (a real Modbus TCP server) through the gateway, mosquitto and the service."""

from __future__ import annotations

import sqlite3
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from gateway.points import Table
from gateway.simulators.pump_room import PumpRoomPlc
from ground.clock import now_ms
from ground.contract import device_topic
from tests.conftest import make_settings, wait_until
from tests.gateway.conftest import pump_room_config
from tickets.service import TicketFilter

pytestmark = pytest.mark.services
DEVICES = {
    "water-pump-1": "water_pump",
    "water-pump-2": "water_pump",
    "sump-pit-1": "sump_pit",
    "water-tank-1": "water_tank",
}


def _status(device_id: str) -> str:
    return device_topic("s01", DEVICES[device_id], device_id, "status")


def _values(store, measurement: str, field: str, device_id: str) -> list[Any]:
    return [v for _t, v in store.query(measurement, field, 0, now_ms() + 60_000, device_id=device_id)]


def test_scaled_readings_reach_the_store_and_a_pump_fault_opens_its_ticket(service, plc, start_gateway):
    plc.pin(Table.HOLDING, 100, 456)  # 0.456 MPa
    plc.pin(Table.DISCRETE_INPUT, 1, False)
    start_gateway(pump_room_config(plc.port), service.settings.mqtt_url)
    store = service.store
    wait_until(
        lambda: 0.456 in _values(store, "water_pump", "outlet_pressure_mpa", "water-pump-1"), 20, "pressure"
    )
    wait_until(lambda: bool(_values(store, "water_tank", "level_pct", "water-tank-1")), 20, "tank level")
    level = _values(store, "water_tank", "level_pct", "water-tank-1")[0]
    assert 59 < level < 91  # int32, low word first, in 0.01 %
    sump = _values(store, "sump_pit", "level_pct", "sump-pit-1")[0]
    assert 25 < sump < 75  # float32
    assert not _values(store, "water_pump", "fault", "water-pump-1")[0]  # the store keeps a boolean as 0 or 1
    assert service.tickets.list(TicketFilter(device_id="water-pump-1")) == []

    plc.pin(Table.DISCRETE_INPUT, 1, True)
    wait_until(lambda: bool(service.tickets.list(TicketFilter(device_id="water-pump-1"))), 20, "the ticket")
    [ticket] = service.tickets.list(TicketFilter(device_id="water-pump-1"))
    assert (ticket.site, ticket.rule) == ("s01", "water_pump_fault")


def test_a_plc_that_stops_answering_is_offline_until_it_answers_again(mosquitto, watcher, plc, start_gateway):
    start_gateway(pump_room_config(plc.port), mosquitto.url)
    for device_id in DEVICES:
        wait_until(partial(_is, watcher, device_id, "online"), 20, f"{device_id} online")
    plc.stop()
    for device_id in DEVICES:
        wait_until(partial(_is, watcher, device_id, "offline"), 20, f"{device_id} offline")
    plc.start()
    for device_id in DEVICES:
        wait_until(partial(_is, watcher, device_id, "online"), 30, f"{device_id} online again")


def test_a_broker_outage_loses_nothing_and_keeps_the_order(
    tmp_path: Path, mosquitto, gate, plc: PumpRoomPlc, start_gateway, run_collector
):
    running = run_collector(make_settings(tmp_path, mqtt_url=mosquitto.url))
    gateway = start_gateway(pump_room_config(plc.port, poll_s=0.1), gate.url)
    spool = tmp_path / "gateway" / "gateway-spool.db"
    wait_until(
        lambda: bool(_values(running.store, "water_tank", "seq", "water-tank-1")), 20, "first readings"
    )

    gate.shut()
    mosquitto.stop()
    wait_until(lambda: _waiting(spool) >= 30, 30, "readings spooled while the broker is down")
    mosquitto.start()  # same port, empty: the collector subscribes again before the gateway is let through
    wait_until(running.collector.connected.is_set, 30, "the collector back")
    gate.open.set()
    wait_until(lambda: _waiting(spool) == 0, 60, "the spool sent")
    gateway.stop()
    sent = _next_seqs(spool)
    assert set(sent) == set(DEVICES)
    for device_id, device_type in DEVICES.items():
        stored = partial(_values, running.store, device_type, "seq", device_id)
        wait_until(lambda: len(stored()) == sent[device_id], 30, f"every reading of {device_id}")  # noqa: B023
        # Stored by time: the seqs come in order, none missing, none twice.
        assert _values(running.store, device_type, "seq", device_id) == list(range(sent[device_id]))


def _is(watcher: Any, device_id: str, state: str) -> bool:
    return bool(watcher.state(_status(device_id)) == state)


def _waiting(spool: Path) -> int:
    with sqlite3.connect(spool) as db:
        return int(db.execute("SELECT count(*) FROM outbox").fetchone()[0])


def _next_seqs(spool: Path) -> dict[str, int]:
    with sqlite3.connect(spool) as db:
        return {d: int(n) for d, n in db.execute("SELECT device_id, next FROM seqs")}


def test_the_gateway_says_online_on_its_own_topic_and_offline_when_it_stops(
    tmp_path: Path, mosquitto, watcher, plc, start_gateway, run_collector
):
    running = run_collector(make_settings(tmp_path, mqtt_url=mosquitto.url))
    gateway = start_gateway(pump_room_config(plc.port), mosquitto.url)
    own = "facility/v1/s01/gateway/gw-pump-room/status"
    wait_until(lambda: watcher.state(own) == "online", 20, "the gateway online")
    wait_until(lambda: watcher.state(_status("water-pump-1")) == "online", 20, "its devices online")
    gateway.stop()
    wait_until(lambda: watcher.state(own) == "offline", 20, "the gateway offline once it stops")
    # Not a device of the contract, and not a fault either: the collector sets none of it aside.
    wait_until(lambda: running.collector.received > 0, 10, "the collector's messages")
    assert running.collector.dead_letters == 0
