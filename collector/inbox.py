"""The collector's durable buffer: an SQLite file (WAL) that holds what was received until it is stored.

A message is acknowledged to the broker only after its line is committed here, so a crash or a
store outage loses nothing that was acknowledged; the spool is also what drains in order when the
store comes back. Each commit of the collector is one row of the spool, its lines as one JSON
array: a row per reading cost as much as everything else the collector did with it. Dead letters
live in the same file.

Per-device `seq` state is checkpointed every few seconds rather than with every append (a row
per device per batch would cost as much as the lines themselves). Batches are deleted only up to
the checkpoint, so after a crash the state is rebuilt exactly: the checkpoint, then the device
lines of the batches after it, parsed back and replayed in order.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import msgspec

from collector.lineprotocol import parse_line
from collector.sequence import DeviceSeq, SeqTracker

log = logging.getLogger(__name__)

PAYLOAD_KEEP_BYTES = 1024

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spool (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    lines TEXT NOT NULL,          -- JSON array of line-protocol lines
    count INTEGER NOT NULL,
    untimed TEXT,                 -- JSON array: indexes of lines whose ts is the receive time
    derived INTEGER NOT NULL      -- 1: the service's own points, no device's seq
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

_dump_lines = msgspec.json.encode
_load_lines = msgspec.json.decode


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
        # 512 KiB of page cache rather than 2 MiB: the spool is appended and read back once, so a
        # large cache only holds pages that are not read again.
        self.db.execute("PRAGMA cache_size=-512")
        self.db.executescript(_SCHEMA)
        self._upgrade_line_rows()
        row = self.db.execute("SELECT value FROM checkpoint WHERE name = 'seq'").fetchone()
        self._checkpoint_id: int = row[0] if row else 0
        self._removed_through = 0

    def close(self) -> None:
        """Close the connection."""
        self.db.close()

    def append(
        self,
        lines: Sequence[str],
        dead: Sequence[DeadLetter] = (),
        *,
        untimed: Sequence[int] = (),
        derived: bool = False,
        stored_through: int = 0,
        checkpoint: Iterable[tuple[tuple[str, str], DeviceSeq]] | None = None,
    ) -> int | None:
        """Commit lines as one batch with dead letters, drop stored batches and maybe checkpoint, at once.

        Returns the batch's id (None without lines). One connection does all the writing: a second
        writer (the time-series writer deleting what it stored) would make each append wait on
        SQLite's lock. `untimed`: indexes of lines whose ts is the receive time, not the device's;
        `derived`: the service's own points. `checkpoint` is the seq state of the devices changed
        since the last checkpoint, including by these lines.
        """
        checkpoint_id = self._checkpoint_id
        batch: int | None = None
        with self._transaction() as db:
            if lines:
                batch = _insert_batch(db, lines, untimed, derived)
            if dead:
                db.executemany(
                    "INSERT INTO dead_letters (received_at, stage, topic, reason, payload)"
                    " VALUES (?, ?, ?, ?, ?)",
                    dead,
                )
            if checkpoint is not None:
                checkpoint_id = _checkpoint(db, checkpoint)
            removable = min(stored_through, checkpoint_id)
            if removable > self._removed_through:
                db.execute("DELETE FROM spool WHERE id <= ?", (removable,))
        self._checkpoint_id = checkpoint_id
        self._removed_through = max(removable, self._removed_through)
        return batch

    def take(self, limit: int, after: int = 0) -> list[tuple[int, list[str]]]:
        """The oldest batches with ids above `after`, whole, until they hold `limit` lines or more."""
        batches: list[tuple[int, list[str]]] = []
        count = 0
        for batch, lines, n in self.db.execute(
            "SELECT id, lines, count FROM spool WHERE id > ? ORDER BY id", (after,)
        ):
            batches.append((batch, _load_lines(lines)))
            count += n
            if count >= limit:
                break
        return batches

    def stored_before(self) -> int:
        """The id below the oldest batch waiting: every batch up to it is stored."""
        first = self.db.execute("SELECT min(id) FROM spool").fetchone()[0]
        return self.last_batch() if first is None else int(first) - 1

    def last_batch(self) -> int:
        """The id of the newest batch ever committed, 0 before the first."""
        return _last_batch(self.db)

    def pending_count(self) -> int:
        """Lines received and not yet stored."""
        return int(self.db.execute("SELECT coalesce(sum(count), 0) FROM spool").fetchone()[0])

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
        """The seq state as committed: the last checkpoint, then the device lines after it replayed."""
        tracker = SeqTracker(_load_seq(self.db))
        replay = self.db.execute(
            "SELECT lines, untimed FROM spool WHERE id > ? AND NOT derived ORDER BY id",
            (self._checkpoint_id,),
        )
        for lines, untimed in replay:
            _replay(tracker, _load_lines(lines), set(json.loads(untimed)) if untimed else set())
        return tracker

    def _upgrade_line_rows(self) -> None:
        """Move a spool kept a row per line (the layout before batches) into one batch, state and all."""
        if not self.db.execute("SELECT 1 FROM sqlite_master WHERE name = 'pending'").fetchone():
            return
        with self._transaction() as db:
            row = db.execute("SELECT value FROM checkpoint WHERE name = 'seq'").fetchone()
            tracker = SeqTracker(_load_seq(db))
            rows = db.execute("SELECT id, line, site, device_id, seq, ts, ts_given FROM pending ORDER BY id")
            lines: list[str] = []
            untimed: list[int] = []
            for line_id, line, site, device_id, seq, ts, ts_given in rows:
                if seq is not None and line_id > (row[0] if row else 0):
                    tracker.observe((site, device_id), seq, ts, bool(ts_given))
                if not ts_given:
                    untimed.append(len(lines))
                lines.append(line)
            if lines:
                # Counted in the state checkpointed below: marked derived so it is not replayed again.
                _insert_batch(db, lines, untimed, derived=True)
            _checkpoint(db, tracker.devices.items())
            db.execute("DROP TABLE pending")
        log.info("moved %d buffered line(s) into the batch spool", len(lines))

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


def _insert_batch(
    db: sqlite3.Connection, lines: Sequence[str], untimed: Sequence[int], derived: bool
) -> int | None:
    """Add one batch to the spool; returns its id."""
    return db.execute(
        "INSERT INTO spool (lines, count, untimed, derived) VALUES (?, ?, ?, ?)",
        (_dump_lines(lines), len(lines), json.dumps(list(untimed)) if untimed else None, derived),
    ).lastrowid


def _last_batch(db: sqlite3.Connection) -> int:
    last = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'spool'").fetchone()
    return int(last[0]) if last else 0


def _checkpoint(db: sqlite3.Connection, state: Iterable[tuple[tuple[str, str], DeviceSeq]]) -> int:
    """Save seq state as of the newest batch, and mark that batch as the checkpoint; returns its id."""
    _save_seq(db, state)
    checkpoint_id = _last_batch(db)
    db.execute("INSERT OR REPLACE INTO checkpoint VALUES ('seq', ?)", (checkpoint_id,))
    return checkpoint_id


def _load_seq(db: sqlite3.Connection) -> dict[tuple[str, str], DeviceSeq]:
    return {
        (site, dev): DeviceSeq(high, high_ts, set(json.loads(missing)) or None, lost, dups)
        for site, dev, high, high_ts, missing, lost, dups in db.execute("SELECT * FROM device_seq")
    }


def _save_seq(db: sqlite3.Connection, state: Iterable[tuple[tuple[str, str], DeviceSeq]]) -> None:
    db.executemany(
        "INSERT OR REPLACE INTO device_seq VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            (site, dev, d.high, d.high_ts, json.dumps(sorted(d.missing or ())), d.lost, d.duplicates)
            for (site, dev), d in state
        ),
    )


def _replay(tracker: SeqTracker, lines: Sequence[str], untimed: set[int]) -> None:
    """Observe the seq of each device line again, as the collector did when it decoded it."""
    for index, line in enumerate(lines):
        try:
            point = parse_line(line)
        except ValueError:
            continue  # not a line of ours; the store will refuse it, and it carries no seq we counted
        seq, site, device_id = point.fields.get("seq"), point.tags.get("site"), point.tags.get("device_id")
        if type(seq) is int and site is not None and device_id is not None and point.time is not None:
            tracker.observe((site, device_id), seq, point.time, index not in untimed)
