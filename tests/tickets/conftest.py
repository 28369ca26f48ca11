"""Fixtures: a ticket service on the records database (SQLite or a real PostgreSQL)."""

from __future__ import annotations

import pytest

from records.db import Database
from tickets.service import TicketService


@pytest.fixture
def tickets(db: Database) -> TicketService:
    """A ticket service on that database."""
    return TicketService(db, reopen_cooldown_s=600)
