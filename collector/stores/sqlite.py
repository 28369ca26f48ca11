"""The embedded time-series store: readings in a local SQLite file, so the product runs with no server."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from collector.lineprotocol import parse_line
from collector.stores.base import Aggregate, StoreRejected, StoreUnavailable, each_line

_SCHEMA = """
CREATE TABLE IF NOT EXISTS points (
    measurement TEXT NOT NULL,
    series TEXT NOT NULL,
    time INTEGER NOT NULL,
    site TEXT,
    device_id TEXT,
    fields TEXT NOT NULL,
    PRIMARY KEY (measurement, series, time)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS points_device ON points (measurement, device_id, time);
CREATE INDEX IF NOT EXISTS points_time ON points (time);
"""
_SQL_AGGREGATES = {"mean": "avg", "min": "min", "max": "max", "count": "count"}
_PRUNE_EVERY_S = 3600.0


class SqliteStore:
    """Points keyed like InfluxDB's (measurement, tag set, time); a rewrite merges fields, as there."""

    def __init__(self, path: Path, retention_days: int = 90) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        # 1 MiB of page cache rather than 2 MiB: points are appended in time order, so the pages
        # worth keeping are the few at the end of the table and of its indexes.
        self._db.execute("PRAGMA cache_size=-1024")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self._retention_ms = retention_days * 86_400_000
        self._pruned_at = 0.0

    def write(self, lines: Sequence[str]) -> None:
        """Store a batch of lines; a line that does not parse rejects the batch (StoreRejected)."""
        rows = []
        for line in each_line(lines):
            try:
                p = parse_line(line)
            except (ValueError, IndexError) as exc:
                raise StoreRejected(f"line protocol: {exc}") from exc
            series = ",".join(f"{k}={v}" for k, v in sorted(p.tags.items()))
            time_ms = p.time if p.time is not None else time.time_ns() // 1_000_000
            rows.append(
                (
                    p.measurement,
                    series,
                    time_ms,
                    p.tags.get("site"),
                    p.tags.get("device_id"),
                    json.dumps(p.fields),
                )
            )
        with self._lock:
            try:
                self._db.execute("BEGIN")
                self._db.executemany(
                    "INSERT INTO points VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO UPDATE"
                    " SET fields = json_patch(fields, excluded.fields)",
                    rows,
                )
                self._db.execute("COMMIT")
                self._prune_if_due()
            except sqlite3.Error as exc:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                # Locked, full or failing disk: worth retrying; the lines wait in the buffer.
                raise StoreUnavailable(f"sqlite: {exc}") from exc

    def _prune_if_due(self) -> None:
        now = time.monotonic()
        if now - self._pruned_at >= _PRUNE_EVERY_S:
            self._pruned_at = now
            cutoff = time.time_ns() // 1_000_000 - self._retention_ms
            self._db.execute("DELETE FROM points WHERE time < ?", (cutoff,))

    def query(
        self,
        measurement: str,
        field: str,
        start_ms: int,
        end_ms: int,
        *,
        site: str | None = None,
        device_id: str | None = None,
        every_s: int | None = None,
        aggregate: Aggregate = "mean",
    ) -> list[tuple[int, Any]]:
        """`field` of `measurement` in [start, end), raw or aggregated into `every_s` buckets."""
        path = "$." + field
        where = ["measurement = ?", "time >= ?", "time < ?", "json_extract(fields, ?) IS NOT NULL"]
        args: list[Any] = [measurement, start_ms, end_ms, path]
        if site is not None:
            where.append("site = ?")
            args.append(site)
        if device_id is not None:
            where.append("device_id = ?")
            args.append(device_id)
        cond = " AND ".join(where)
        if every_s is None:
            sql = f"SELECT time, json_extract(fields, ?) FROM points WHERE {cond} ORDER BY time"
            args.insert(0, path)
        elif aggregate == "last":
            step = every_s * 1000
            sql = (
                f"SELECT (time / {step}) * {step} AS bucket, json_extract(fields, ?), max(time)"
                f" FROM points WHERE {cond} GROUP BY bucket ORDER BY bucket"
            )
            args.insert(0, path)
        else:
            step = every_s * 1000
            fn = _SQL_AGGREGATES[aggregate]
            sql = (
                f"SELECT (time / {step}) * {step} AS bucket, {fn}(json_extract(fields, ?))"
                f" FROM points WHERE {cond} GROUP BY bucket ORDER BY bucket"
            )
            args.insert(0, path)
        with self._lock:
            return [(int(r[0]), r[1]) for r in self._db.execute(sql, args)]

    def close(self) -> None:
        """Close the file."""
        self._db.close()
