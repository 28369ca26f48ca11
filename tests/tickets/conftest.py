"""Fixtures: a migrated records database, SQLite or a real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from records.db import Database, migrate
from tickets.service import TicketService


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
