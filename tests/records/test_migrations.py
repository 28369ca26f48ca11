"""The migrations build exactly the tables the models describe."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import select, text

from records.db import (
    HEAD,
    MIGRATIONS,
    Database,
    MigrationFailed,
    make_engine,
    migrate,
    migrate_apart,
    revision,
)
from records.models import Base, Ticket


def test_migrations_match_the_models(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'records.db'}")
    migrate(engine)
    with engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert differences == []


def test_tickets_of_before_the_timing_migration_get_their_resolve_target(db_url: str) -> None:
    engine = make_engine(db_url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0005")
    due = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO tickets (site, class, status, source, title, opened_at, response_due,"
                " occurrences, last_occurrence_at, notified_count, escalation_level)"
                " VALUES ('s1', 'major', 'open', 'alarm', 't', :at, :due, 1, :at, 0, 0)"
            ),
            {"at": due - timedelta(minutes=30), "due": due},
        )
    migrate(engine)
    engine.dispose()
    records = Database(db_url)
    try:
        with records.read() as s:
            [ticket] = s.scalars(select(Ticket)).all()
        # 24 h for a major fault from the opening: the response due (30 min) plus 23 h 30 min.
        assert ticket.resolve_due == due + timedelta(hours=23, minutes=30)
        assert ticket.ack_from is None and ticket.response_overdue_at is None
    finally:
        records.close()


def test_head_is_the_newest_migration() -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(config).get_heads() == [HEAD]


def test_a_database_at_the_head_is_not_migrated_again(db_url: str) -> None:
    engine = make_engine(db_url)
    assert revision(engine) is None
    migrate(engine)
    assert revision(engine) == HEAD
    engine.dispose()
    # A start on a database at the head never imports Alembic.
    probe = (
        "import sys; from records.db import make_engine, migrate;"
        f" migrate(make_engine({db_url!r})); print(sorted(m for m in sys.modules if m.startswith('alembic')))"
    )
    root = Path(__file__).resolve().parents[2]
    found = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=root
    )
    assert found.stdout.strip() == "[]"


def test_migrations_run_apart_leave_nothing_of_alembic_in_the_process(db_url: str) -> None:
    # In a process of its own, as a service starts: Alembic runs in a child that exits.
    probe = (
        "import sys; from records.db import make_engine, migrate_apart, revision;"
        f" e = make_engine({db_url!r}); migrate_apart(e); print(revision(e));"
        " print(sorted(m for m in sys.modules if m.startswith('alembic')))"
    )
    root = Path(__file__).resolve().parents[2]
    found = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=root
    )
    assert found.stdout.split("\n")[:2] == [HEAD, "[]"]
    engine = make_engine(db_url)
    with engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert differences == []


def test_migrations_that_fail_apart_stop_the_start(tmp_path: Path) -> None:
    # Records at a revision this release does not know: Alembic fails in the child, and so does the start.
    engine = make_engine(f"sqlite:///{tmp_path / 'records.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)"))
        conn.execute(text("INSERT INTO alembic_version VALUES ('9999')"))
    with pytest.raises(MigrationFailed, match="exit status 1"):
        migrate_apart(engine)
    assert revision(engine) == "9999"
    engine.dispose()
