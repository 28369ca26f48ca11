"""The collector's durable buffer: an SQLite file (WAL) that holds what was received until it is stored.

A message is acknowledged to the broker only after its line is committed here, so a crash or a
store outage loses nothing that was acknowledged; the pending table is also the spool that drains
in order when the store comes back. Dead letters live in the same file.

Per-device `seq` state is checkpointed every few seconds rather than with every append (a row
per device per batch would cost as much as the lines themselves). Each pending line keeps its
device and seq, and lines are deleted only up to the checkpoint, so after a crash the state is
rebuilt exactly: the checkpoint, then the lines after it replayed in order.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from collector.sequence import DeviceSeq, SeqTracker

PAYLOAD_KEEP_BYTES = 1024

_SCHEMA = """
CREATE TABLE IF NOT EXISTS pending (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    line TEXT NOT NULL,
    site TEXT NOT NULL,
    device_id TEXT NOT NULL,
    seq INTEGER,
    ts INTEGER NOT NULL,
    ts_given INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS checkpoint (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
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


class PendingLine(NamedTuple):
    """A line to store, with the device and seq it came from."""

    line: str
    site: str
    device_id: str
    seq: int | None
    ts: int
    ts_given: bool


class DeadLetter(NamedTuple):
    """A message or point set aside, with why."""

    received_at: int
    stage: str  # "decode": broke the contract; "buffer": could not be buffered; "store": the store refused it
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
        row = self.db.execute("SELECT value FROM checkpoint WHERE name = 'seq'").fetchone()
        self._checkpoint_id: int = row[0] if row else 0
        self._removed_through = 0

    def close(self) -> None:
        """Close the connection."""
        self.db.close()

    def append(
        self,
        lines: Sequence[PendingLine],
        dead: Sequence[DeadLetter] = (),
        *,
        stored_through: int = 0,
        checkpoint: Iterable[tuple[tuple[str, str], DeviceSeq]] | None = None,
    ) -> None:
        """Commit lines and dead letters, drop stored lines and maybe checkpoint seq state, at once.

        One connection does all the writing: a second writer (the time-series writer deleting
        what it stored) would make each append wait on SQLite's lock. `checkpoint` is the seq
        state of the devices changed since the last checkpoint, including by these lines.
        """
        checkpoint_id = self._checkpoint_id
        with self._transaction() as db:
            if lines:
                db.executemany(
                    "INSERT INTO pending (line, site, device_id, seq, ts, ts_given)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    lines,
                )
            if dead:
                db.executemany(
                    "INSERT INTO dead_letters (received_at, stage, topic, reason, payload)"
                    " VALUES (?, ?, ?, ?, ?)",
                    dead,
                )
            if checkpoint is not None:
                db.executemany(
                    "INSERT OR REPLACE INTO device_seq VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        (site, dev, d.high, d.high_ts, json.dumps(sorted(d.missing)), d.lost, d.duplicates)
                        for (site, dev), d in checkpoint
                    ),
                )
                last = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'pending'").fetchone()
                checkpoint_id = last[0] if last else 0
                db.execute("INSERT OR REPLACE INTO checkpoint VALUES ('seq', ?)", (checkpoint_id,))
            removable = min(stored_through, checkpoint_id)
            if removable > self._removed_through:
                db.execute("DELETE FROM pending WHERE id <= ?", (removable,))
        self._checkpoint_id = checkpoint_id
        self._removed_through = max(removable, self._removed_through)

    def take(self, limit: int, after: int = 0) -> list[tuple[int, str]]:
        """The oldest pending lines with ids above `after`, at most `limit`, with their ids."""
        return self.db.execute(
            "SELECT id, line FROM pending WHERE id > ? ORDER BY id LIMIT ?", (after, limit)
        ).fetchall()

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

    def prune_dead_letters(self, before_ms: int) -> int:
        """Drop dead letters received before `before_ms`; returns how many went."""
        with self._transaction() as db:
            return db.execute("DELETE FROM dead_letters WHERE received_at < ?", (before_ms,)).rowcount

    def latest_dead_letters_by_topic(self, limit: int) -> list[tuple[str, str]]:
        """(topic, payload kept) of the newest dead letter of each topic, newest first, at most `limit`."""
        return self.db.execute(
            "SELECT topic, payload FROM dead_letters WHERE id IN"
            " (SELECT max(id) FROM dead_letters WHERE stage = 'decode' GROUP BY topic)"
            " ORDER BY id DESC LIMIT ?",
            (limit,),
        ).fetchall()

    def dead_letter_count(self) -> int:
        """All dead letters kept."""
        return int(self.db.execute("SELECT count(*) FROM dead_letters").fetchone()[0])

    def load_tracker(self) -> SeqTracker:
        """The seq state as committed: the last checkpoint, then the lines after it replayed."""
        rows = self.db.execute("SELECT * FROM device_seq").fetchall()
        tracker = SeqTracker(
            {
                (site, dev): DeviceSeq(high, high_ts, set(json.loads(missing)), lost, dups)
                for site, dev, high, high_ts, missing, lost, dups in rows
            }
        )
        replay = self.db.execute(
            "SELECT site, device_id, seq, ts, ts_given FROM pending"
            " WHERE id > ? AND seq IS NOT NULL ORDER BY id",
            (self._checkpoint_id,),
        )
        for site, device_id, seq, ts, ts_given in replay:
            tracker.observe((site, device_id), seq, ts, bool(ts_given))
        return tracker

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
