"""Moving the engine's snapshot out of the records into `engine-state.db` (SQLite files)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from facility.pipeline import load_engine_state, move_engine_state
from records.db import Database, migrate
from records.models import EngineState

OLDER, NEWER = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 2, tzinfo=UTC)


@pytest.fixture
def databases(tmp_path: Path) -> Iterator[tuple[Database, Database]]:
    """The records, migrated, and an engine-state file with its one table."""
    records = Database(f"sqlite:///{tmp_path / 'records.db'}")
    migrate(records.engine)
    state_db = Database(f"sqlite:///{tmp_path / 'engine-state.db'}")
    EngineState.metadata.create_all(state_db.engine, tables=[EngineState.__table__])  # type: ignore[list-item]
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
