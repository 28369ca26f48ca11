"""Fixtures: a migrated records database, SQLite or a real PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from records.db import Database, make_engine, migrate
from tests.servers import PostgreSQL
from tickets.service import TicketService


def _postgres_url(request: pytest.FixtureRequest) -> str:
    server: PostgreSQL = request.getfixturevalue("postgresql")
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = make_engine(server.url).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return server.url.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty records database: an SQLite file, or a database on the test PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'records.db'}"
    return _postgres_url(request)


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    """The records database, migrated to the newest schema."""
    database = Database(db_url)
    migrate(database.engine)
    yield database
    database.close()


@pytest.fixture
def tickets(db: Database) -> TicketService:
    """A ticket service on that database."""
    return TicketService(db, reopen_cooldown_s=600)
