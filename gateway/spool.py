"""The gateway's spool: each reading kept on disk, in order, with its seq, until the broker has it."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any, NamedTuple

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id TEXT NOT NULL,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_device ON outbox (device_id, id);
CREATE TABLE IF NOT EXISTS seqs (device_id TEXT PRIMARY KEY, next INTEGER NOT NULL);
"""


class Spooled(NamedTuple):
    """A message waiting for the broker's acknowledgement."""

    id: int
    topic: str
    payload: bytes


class Spool:
    """An SQLite file of messages not yet acknowledged, and each device's next seq.

    The seq is taken in the same transaction that stores the message, so a restart neither
    repeats nor skips one (the collector would count a repeat as a reboot and a skip as a loss).
    """

    def __init__(self, path: Path, synchronous: str = "FULL") -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={'FULL' if synchronous == 'FULL' else 'NORMAL'}")
        self._db.executescript(_SCHEMA)

    def append(self, device_id: str, topic: str, ts: int, body: dict[str, Any]) -> int:
        """Store one message of the device with its next seq; returns that seq."""
        with self._transaction():
            row = self._db.execute("SELECT next FROM seqs WHERE device_id = ?", (device_id,)).fetchone()
            seq = int(row[0]) if row else 0
            payload = json.dumps({"ts": ts, "seq": seq, **body}, separators=(",", ":")).encode()
            self._db.execute(
                "INSERT INTO outbox (device_id, topic, payload) VALUES (?, ?, ?)", (device_id, topic, payload)
            )
            self._db.execute(
                "INSERT INTO seqs (device_id, next) VALUES (?, ?)"
                " ON CONFLICT (device_id) DO UPDATE SET next = excluded.next",
                (device_id, seq + 1),
            )
        return seq

    def oldest(self, device_id: str, limit: int) -> list[Spooled]:
        """The device's oldest waiting messages, in the order they were read."""
        rows = self._db.execute(
            "SELECT id, topic, payload FROM outbox WHERE device_id = ? ORDER BY id LIMIT ?",
            (device_id, limit),
        ).fetchall()
        return [Spooled(int(i), str(t), bytes(p)) for i, t, p in rows]

    def remove(self, ids: list[int]) -> None:
        """Forget acknowledged messages."""
        with self._transaction():
            self._db.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in ids])

    def waiting(self) -> int:
        """How many messages wait for the broker."""
        return int(self._db.execute("SELECT count(*) FROM outbox").fetchone()[0])

    def close(self) -> None:
        """Close the file."""
        self._db.close()

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    """BEGIN IMMEDIATE … COMMIT, rolled back on an error."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, _value: object, _tb: object) -> None:
        self._db.execute("COMMIT" if kind is None else "ROLLBACK")
