"""The collector's durable buffer: an SQLite file (WAL) that holds what was received until it is stored.

A message is acknowledged to the broker only after its line is committed here, so a crash or a
store outage loses nothing that was acknowledged; the pending table is also the spool that drains
in order when the store comes back. Dead letters and per-device `seq` state live in the same file
and are committed in the same transaction as the lines they belong to.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from collector.sequence import DeviceSeq

PAYLOAD_KEEP_BYTES = 1024

_SCHEMA = """
CREATE TABLE IF NOT EXISTS pending (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    line TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at INTEGER NOT NULL,
    stage TEXT NOT NULL,
    topic TEXT NOT NULL,
    reason TEXT NOT NULL,
    payload TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS device_seq (
    site TEXT NOT NULL,
    device_id TEXT NOT NULL,
    high INTEGER NOT NULL,
    high_ts INTEGER NOT NULL,
    missing TEXT NOT NULL,
    lost INTEGER NOT NULL,
    duplicates INTEGER NOT NULL,
    PRIMARY KEY (site, device_id)
);
"""


class DeadLetter(NamedTuple):
    """A message or point set aside, with why."""

    received_at: int
    stage: str  # "decode": broke the contract; "store": the time-series store refused it
    topic: str
    reason: str
    payload: str


def truncated(payload: bytes | str) -> str:
    """The first PAYLOAD_KEEP_BYTES of a payload, as text, for a dead letter."""
    if isinstance(payload, str):
        return payload[:PAYLOAD_KEEP_BYTES]
    return payload[:PAYLOAD_KEEP_BYTES].decode("utf-8", errors="replace")


class Inbox:
    """One connection to the durable buffer; open one per thread."""

    def __init__(self, path: Path, synchronous: str = "FULL") -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit survives power loss, not only a process crash.
        self.db.execute(f"PRAGMA synchronous={synchronous}")
        self.db.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the connection."""
        self.db.close()

    def append(
        self,
        lines: Sequence[str],
        dead: Sequence[DeadLetter] = (),
        seq_state: Iterable[tuple[tuple[str, str], DeviceSeq]] = (),
    ) -> None:
        """Commit received lines, dead letters and changed seq state in one transaction."""
        with self._transaction() as db:
            if lines:
                db.executemany("INSERT INTO pending (line) VALUES (?)", ((line,) for line in lines))
            if dead:
                db.executemany(
                    "INSERT INTO dead_letters (received_at, stage, topic, reason, payload)"
                    " VALUES (?, ?, ?, ?, ?)",
                    dead,
                )
            db.executemany(
                "INSERT OR REPLACE INTO device_seq VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    (site, dev, d.high, d.high_ts, json.dumps(sorted(d.missing)), d.lost, d.duplicates)
                    for (site, dev), d in seq_state
                ),
            )

    def take(self, limit: int) -> list[tuple[int, str]]:
        """The oldest pending lines, at most `limit`, with their ids."""
        return self.db.execute("SELECT id, line FROM pending ORDER BY id LIMIT ?", (limit,)).fetchall()

    def remove_through(self, last_id: int) -> None:
        """Drop pending lines up to and including `last_id`, once they are stored."""
        self.db.execute("DELETE FROM pending WHERE id <= ?", (last_id,))

    def pending_count(self) -> int:
        """Lines received and not yet stored."""
        return int(self.db.execute("SELECT count(*) FROM pending").fetchone()[0])

    def add_dead_letters(self, dead: Sequence[DeadLetter]) -> None:
        """Set aside messages or points with their reasons."""
        self.append((), dead)

    def dead_letters(self, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        """The newest dead letters first."""
        rows = self.db.execute(
            "SELECT id, received_at, stage, topic, reason, payload FROM dead_letters"
            " ORDER BY id DESC LIMIT ? OFFSET ?",
            (limit, offset),
        ).fetchall()
        keys = ("id", "received_at", "stage", "topic", "reason", "payload")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def dead_letter_count(self) -> int:
        """All dead letters kept."""
        return int(self.db.execute("SELECT count(*) FROM dead_letters").fetchone()[0])

    def load_seq_state(self) -> dict[tuple[str, str], DeviceSeq]:
        """Every device's seq state as last committed."""
        rows = self.db.execute("SELECT * FROM device_seq").fetchall()
        return {
            (site, dev): DeviceSeq(high, high_ts, set(json.loads(missing)), lost, dups)
            for site, dev, high, high_ts, missing, lost, dups in rows
        }

    def _transaction(self) -> _Transaction:
        return _Transaction(self.db)


class _Transaction:
    """BEGIN IMMEDIATE … COMMIT, rolled back on error."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type: object, *_: object) -> None:
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")


def now_ms() -> int:
    """Wall-clock time in epoch milliseconds."""
    return time.time_ns() // 1_000_000
