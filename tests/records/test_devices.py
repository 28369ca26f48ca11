"""The device directory's flush on a real database: SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from ground.contract import Message, decode
from records.db import Database
from records.devices import FLUSH_CHUNK, DeviceDirectory

T0 = 1_795_749_124_000


def telemetry(device_id: str, **metrics: object) -> Message:
    """An elevator's telemetry with only these points (report by exception)."""
    body = json.dumps({"ts": T0, "metrics": metrics}).encode()
    return decode(f"facility/v1/s1/elevator/{device_id}/telemetry", body, T0)


def at(ms: int) -> datetime:
    """A time `ms` after T0."""
    return datetime.fromtimestamp((T0 + ms) / 1000, UTC)


def test_points_reported_by_exception_merge_across_flushes_and_restarts(db: Database) -> None:
    devices = DeviceDirectory(db)
    devices.observe([telemetry("elev-1", floor=3, door="closed")], T0)
    assert devices.flush() == 1
    devices.observe([telemetry("elev-1", floor=4)], T0 + 1000)
    devices.flush()
    row = devices.get("s1", "elev-1")
    assert row is not None
    assert row.latest == {"floor": 4, "door": "closed"}
    assert (row.first_seen, row.last_seen) == (at(0), at(1000))

    # A new process knows nothing in memory: it merges into what the row holds.
    after_restart = DeviceDirectory(db)
    after_restart.observe([telemetry("elev-1", moving=True)], T0 + 2000)
    after_restart.flush()
    row = after_restart.get("s1", "elev-1")
    assert row is not None
    assert row.latest == {"floor": 4, "door": "closed", "moving": True}
    assert (row.first_seen, row.last_seen) == (at(0), at(2000))


def test_a_registered_device_is_first_seen_when_it_first_reports(db: Database) -> None:
    devices = DeviceDirectory(db)
    devices.register({"site": "s1", "device_id": "elev-3", "device_type": "elevator", "name": "Elevator 3"})
    row = devices.get("s1", "elev-3")
    assert row is not None and row.first_seen is None
    devices.observe([telemetry("elev-3", floor=1)], T0 + 500)
    devices.flush()
    devices.observe([telemetry("elev-3", floor=2)], T0 + 900)
    devices.flush()
    row = devices.get("s1", "elev-3")
    assert row is not None
    assert (row.name, row.registered, row.latest) == ("Elevator 3", True, {"floor": 2})
    assert (row.first_seen, row.last_seen) == (at(500), at(900))


def test_a_fleet_larger_than_one_transaction_is_written_whole(db: Database) -> None:
    devices = DeviceDirectory(db)
    fleet = [f"elev-{n}" for n in range(FLUSH_CHUNK * 2 + 7)]
    devices.observe([telemetry(d, floor=1) for d in fleet], T0)
    assert devices.flush() == len(fleet)
    devices.observe([telemetry(d, door="open") for d in fleet], T0 + 1000)
    assert devices.flush() == len(fleet)
    rows = devices.list("s1")
    assert sorted(r.device_id for r in rows) == sorted(fleet)
    assert {json.dumps(r.latest, sort_keys=True) for r in rows} == {'{"door": "open", "floor": 1}'}
    assert {r.last_seen for r in rows} == {at(1000)}
