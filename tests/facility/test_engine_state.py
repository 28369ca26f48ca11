"""The engine's snapshot: saved in parts, read back a part at a time, moved out of SQLite records."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, event, select

from facility.pipeline import PARTS, Pipeline, create_state_tables, load_engine_state, move_engine_state
from ground.contract import decode
from records.db import Database, migrate
from records.devices import DeviceDirectory
from records.models import EngineState
from rules.catalogue import default_rules_path, load_rules
from rules.engine import PART_DEVICES, Engine
from tickets.notify import Dispatcher
from tickets.service import TicketService

OLDER, NEWER = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 2, tzinfo=UTC)


@pytest.fixture
def databases(tmp_path: Path) -> Iterator[tuple[Database, Database]]:
    """The records, migrated, and an engine-state file with its one table."""
    records = Database(f"sqlite:///{tmp_path / 'records.db'}")
    migrate(records.engine)
    state_db = Database(f"sqlite:///{tmp_path / 'engine-state.db'}")
    create_state_tables(state_db.engine)
    yield records, state_db
    records.close()
    state_db.close()


def save(db: Database, saved_at: datetime, version: int) -> None:
    """A snapshot, told apart by its version."""
    with db.session() as s:
        s.merge(EngineState(id=1, saved_at=saved_at, state={"format": 1, "version": version, "devices": []}))


def test_a_snapshot_among_the_records_moves_to_its_file_and_leaves_none_behind(
    databases: tuple[Database, Database],
) -> None:
    records, state_db = databases
    save(records, OLDER, 7)
    move_engine_state(records, state_db)
    assert (load_engine_state(state_db) or {})["version"] == 7
    assert load_engine_state(records) is None
    move_engine_state(records, state_db)  # nothing left to move: a no-op
    assert (load_engine_state(state_db) or {})["version"] == 7


def test_the_newer_of_two_snapshots_wins(databases: tuple[Database, Database]) -> None:
    records, state_db = databases
    save(state_db, OLDER, 10)
    save(records, NEWER, 20)  # an older version of the service ran in between
    move_engine_state(records, state_db)
    assert (load_engine_state(state_db) or {})["version"] == 20
    assert load_engine_state(records) is None
    save(records, OLDER, 30)  # older than what the file holds: dropped
    move_engine_state(records, state_db)
    assert (load_engine_state(state_db) or {})["version"] == 20
    assert load_engine_state(records) is None


CATALOGUE = load_rules(default_rules_path())


def fleet(devices: int, level_pct: float = 50.0) -> Engine:
    """An engine that has heard one reading from each of `devices` water tanks."""
    engine = Engine(CATALOGUE)
    for n in range(devices):
        payload = json.dumps({"ts": 1_000, "seq": 1, "metrics": {"level_pct": level_pct}}).encode()
        engine.process(decode(f"facility/v1/s1/water_tank/tank-{n:05d}/telemetry", payload, 1_000), 1_000)
    return engine


def pipeline(engine: Engine, db: Database, dispatcher: Dispatcher, state_id: int = 1) -> Pipeline:
    """A pipeline saving `engine`'s snapshot to `db` (the records, as when they are in PostgreSQL)."""
    return Pipeline(
        engine,
        TicketService(db),
        DeviceDirectory(db),
        db,
        dispatcher,
        db,
        record=lambda points: None,
        set_aside=lambda letters: None,
        state_id=state_id,
    )


def part_writes(db: Database) -> list[str]:
    """The statements that write a part of a snapshot, from now on."""
    seen: list[str] = []

    def note(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "engine_state_parts" in statement and not statement.lstrip().upper().startswith("SELECT"):
            seen.append(statement.split()[0].upper())

    event.listen(db.engine, "before_cursor_execute", note)
    return seen


def test_a_large_fleet_is_saved_in_parts_and_restored_whole(db: Database) -> None:
    dispatcher = Dispatcher([])
    engine = fleet(2 * PART_DEVICES + 500)
    pipeline(engine, db, dispatcher).save_if_changed()
    with db.read() as s:
        sizes = [len(devices) for devices in s.scalars(select(PARTS.c.devices).order_by(PARTS.c.part))]
    assert sizes == [PART_DEVICES, PART_DEVICES, 500]
    saved = load_engine_state(db)
    assert saved is not None and saved["parts"] == 3 and saved["unapplied"] == []
    restored = Engine(CATALOGUE, saved)
    assert restored.snapshot()["devices"] == engine.snapshot()["devices"]
    dispatcher.stop()


def test_only_the_parts_that_changed_are_written_again(db: Database) -> None:
    dispatcher = Dispatcher([])
    engine = fleet(2 * PART_DEVICES + 500, level_pct=50.0)
    saver = pipeline(engine, db, dispatcher)
    saver.save_if_changed()
    writes = part_writes(db)
    # A tank in the second part runs low: its pending duration changes the engine's version.
    low = json.dumps({"ts": 2_000, "seq": 2, "metrics": {"level_pct": 1.0}}).encode()
    engine.process(
        decode(f"facility/v1/s1/water_tank/tank-{PART_DEVICES + 7:05d}/telemetry", low, 2_000), 2_000
    )
    saver.save_if_changed()
    assert writes == ["UPDATE"], "one part of three written again"
    saver.save_if_changed()  # nothing changed: nothing written
    assert writes == ["UPDATE"]
    restored = Engine(CATALOGUE, load_engine_state(db))
    assert restored.snapshot()["devices"] == engine.snapshot()["devices"]
    dispatcher.stop()


def test_a_smaller_snapshot_leaves_no_parts_of_the_larger_behind(db: Database) -> None:
    dispatcher = Dispatcher([])
    pipeline(fleet(2 * PART_DEVICES + 1), db, dispatcher).save_if_changed()
    small = fleet(10)
    pipeline(small, db, dispatcher).save_if_changed()  # after a restart, say, with a changed fleet
    saved = load_engine_state(db)
    assert saved is not None and saved["parts"] == 1
    assert [d["device_id"] for d in saved["devices"]] == [f"tank-{n:05d}" for n in range(10)]
    dispatcher.stop()


def test_workers_snapshots_keep_to_their_own_rows(db: Database) -> None:
    dispatcher = Dispatcher([])
    pipeline(fleet(PART_DEVICES + 1), db, dispatcher, state_id=2).save_if_changed()
    pipeline(fleet(3), db, dispatcher, state_id=3).save_if_changed()
    assert len(list((load_engine_state(db, 2) or {})["devices"])) == PART_DEVICES + 1
    assert len(list((load_engine_state(db, 3) or {})["devices"])) == 3
    dispatcher.stop()


def test_a_snapshot_missing_a_part_is_refused_rather_than_restored_short(db: Database) -> None:
    dispatcher = Dispatcher([])
    pipeline(fleet(PART_DEVICES + 1), db, dispatcher).save_if_changed()
    with db.session() as s:
        s.execute(delete(PARTS).where(PARTS.c.part == 1))
    with pytest.raises(ValueError, match="1 of its 2 parts"):
        load_engine_state(db)
    dispatcher.stop()
