"""The device directory's flush on a real database: SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from ground.contract import Message, decode
from records.db import Database
from records.devices import FLUSH_CHUNK, DeviceDirectory

T0 = 1_795_749_124_000


def telemetry(device_id: str, **metrics: object) -> Message:
    """An elevator's telemetry with only these points (report by exception)."""
    body = json.dumps({"ts": T0, "metrics": metrics}).encode()
    return decode(f"facility/v1/s1/elevator/{device_id}/telemetry", body, T0)


def status(device_id: str, state: str = "online") -> Message:
    """An elevator's status message."""
    body = json.dumps({"ts": T0, "state": state}).encode()
    return decode(f"facility/v1/s1/elevator/{device_id}/status", body, T0)


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


def test_a_row_written_by_another_directory_is_merged_into_not_overwritten(db: Database) -> None:
    # Two processes on the same records (or one before and one after a restart, both alive for
    # a moment): each flush merges into what the row holds at that moment.
    one, other = DeviceDirectory(db), DeviceDirectory(db)
    one.observe([telemetry("elev-1", floor=3)], T0)
    one.flush()
    other.observe([telemetry("elev-1", door="open")], T0 + 1000)
    other.flush()
    one.observe([telemetry("elev-1", moving=True)], T0 + 2000)
    one.flush()
    row = one.get("s1", "elev-1")
    assert row is not None
    assert row.latest == {"floor": 3, "door": "open", "moving": True}
    assert (row.first_seen, row.last_seen) == (at(0), at(2000))


def test_a_status_is_seen_and_leaves_the_latest_values_as_they_are(db: Database) -> None:
    devices = DeviceDirectory(db)
    devices.observe([telemetry("elev-1", floor=3)], T0)
    devices.flush()
    devices.observe([status("elev-1")], T0 + 1000)
    assert devices.flush() == 1
    devices.observe([status("elev-2")], T0 + 2000)
    devices.flush()
    one, two = devices.get("s1", "elev-1"), devices.get("s1", "elev-2")
    assert one is not None and two is not None
    assert (one.latest, one.first_seen, one.last_seen) == ({"floor": 3}, at(0), at(1000))
    assert (two.latest, two.first_seen, two.last_seen, two.registered) == ({}, at(2000), at(2000), False)


def test_messages_merged_between_flushes_are_left_as_they_were(db: Database) -> None:
    devices = DeviceDirectory(db)
    first, second = telemetry("elev-1", floor=3, door="closed"), telemetry("elev-1", floor=4)
    devices.observe([first], T0)
    devices.observe([second], T0 + 500)
    devices.flush()
    assert (first.body, second.body) == ({"floor": 3, "door": "closed"}, {"floor": 4})
    row = devices.get("s1", "elev-1")
    assert row is not None and row.latest == {"floor": 4, "door": "closed"}


def test_a_registered_device_keeps_what_was_registered_when_it_reports(db: Database) -> None:
    devices = DeviceDirectory(db)
    devices.register(
        {
            "site": "s1",
            "device_id": "elev-3",
            "device_type": "elevator",
            "name": "Elevator 3",
            "building": "B",
            "interval_s": 30,
        }
    )
    devices.observe([telemetry("elev-3", floor=1)], T0)
    devices.flush()
    # After a restart too: the new directory knows nothing of the row.
    after_restart = DeviceDirectory(db)
    after_restart.observe([telemetry("elev-3", door="open")], T0 + 1000)
    after_restart.flush()
    row = after_restart.get("s1", "elev-3")
    assert row is not None
    assert (row.name, row.building, row.interval_s, row.registered, row.device_type) == (
        "Elevator 3",
        "B",
        30,
        True,
        "elevator",
    )
    assert (row.latest, row.first_seen, row.last_seen) == ({"floor": 1, "door": "open"}, at(0), at(1000))


def test_updates_use_up_no_ids(db: Database) -> None:
    # On PostgreSQL an upsert draws the id's default before it finds the conflict: a device
    # written every few seconds would use up the integer ids in weeks.
    devices = DeviceDirectory(db)
    devices.observe([telemetry("elev-1", floor=1)], T0)
    devices.flush()
    for n in range(1, 4):
        devices.observe([telemetry("elev-1", floor=n)], T0 + n)
        devices.flush()
    devices.observe([telemetry("elev-2", floor=1)], T0 + 10)
    devices.flush()
    one, two = devices.get("s1", "elev-1"), devices.get("s1", "elev-2")
    assert one is not None and two is not None
    assert two.id == one.id + 1


def test_a_failed_flush_keeps_what_it_could_not_write_and_newer_observations_win(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    devices = DeviceDirectory(db)
    fleet = [f"elev-{n:03d}" for n in range(FLUSH_CHUNK + 5)]
    devices.observe([telemetry(d, floor=1, door="closed") for d in fleet], T0)
    late = fleet[-1]  # in the second transaction, which fails
    session = db.session
    transactions = 0

    @contextmanager
    def second_fails() -> Iterator[Session]:
        nonlocal transactions
        transactions += 1
        if transactions == 2:
            # A message arrives while the flush is under way.
            devices.observe([telemetry(late, floor=2)], T0 + 1000)
            raise OperationalError("INSERT INTO devices …", None, Exception("database is locked"))
        with session() as s:
            yield s

    monkeypatch.setattr(db, "session", second_fails)
    with pytest.raises(OperationalError):
        devices.flush()
    monkeypatch.setattr(db, "session", session)
    written = {r.device_id for r in devices.list("s1")}
    assert written == set(fleet[:FLUSH_CHUNK])

    # Only what was not written is kept, merged with what came meanwhile.
    assert devices.flush() == len(fleet) - FLUSH_CHUNK
    row = devices.get("s1", late)
    assert row is not None
    assert (row.latest, row.first_seen, row.last_seen) == ({"floor": 2, "door": "closed"}, at(0), at(1000))
    assert {r.device_id for r in devices.list("s1")} == set(fleet)
