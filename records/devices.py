"""The device directory: what is registered, what has reported, and each device's latest values."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import msgspec
import yaml
from sqlalchemy import Insert, Table, bindparam, false, func, literal_column, select
from sqlalchemy import cast as sql_cast

from ground.clock import from_ms
from ground.contract import DEVICE_TYPES, Kind, Message
from records.db import Database, EncodedJson
from records.models import Device

# Devices per flush transaction (a few ms of the writer's turn).
FLUSH_CHUNK = 50
TURN_PAUSE_S = 0.001


def online(seen: bool, offline_alarm: bool) -> bool | None:
    """Online unless the offline rule holds; unknown for a device never heard from and not flagged."""
    return not offline_alarm if seen or offline_alarm else None


@dataclass(slots=True)
class _Seen:
    """What one device reported since the last flush; times are epoch ms of arrival."""

    device_type: str
    first_ms: int
    last_ms: int
    # The points of its telemetry, newest last; None when it sent none. The first message's
    # body is kept as it is (never changed here): most devices report once between flushes.
    latest: dict[str, Any] | None = None


def _merged(old: dict[str, Any] | None, new: dict[str, Any] | None) -> dict[str, Any] | None:
    """`new`'s points over `old`'s, as a dict of its own: neither is changed (one may be a message's)."""
    if old is None:
        return new
    if new is None:
        return old
    return {**old, **new}


_ENCODER = msgspec.json.Encoder()
_NO_POINTS = EncodedJson(b"{}")


class DeviceDirectory:
    """Keeps what devices reported in memory and writes what changed every few seconds.

    Writing a row per message would cost more than storing the reading; the API reads the
    database, so it lags the devices by at most one flush. Between flushes only the devices
    that reported are held: a device's latest values are merged into its row by the database.
    """

    def __init__(self, db: Database) -> None:
        self._db = db
        self._lock = threading.Lock()
        self._changed: dict[tuple[str, str], _Seen] = {}
        self._flushing = threading.Lock()
        self._upsert: Insert | None = None

    def observe(self, messages: Sequence[Message], arrival_ms: int) -> None:
        """Note the devices these messages came from and their telemetry."""
        with self._lock:
            changed = self._changed
            for m in messages:
                key = (m.site, m.device_id)
                seen = changed.get(key)
                if seen is None:
                    seen = changed[key] = _Seen(sys.intern(m.device_type), arrival_ms, arrival_ms)
                else:
                    seen.last_ms = arrival_ms
                if m.kind is Kind.TELEMETRY:
                    seen.latest = _merged(seen.latest, m.body)

    def flush(self) -> int:
        """Write what changed since the last flush; returns how many devices."""
        # One flush at a time (the timer's and the one at stop), so an older one never writes last.
        with self._flushing:
            with self._lock:
                changed, self._changed = self._changed, {}
            count = len(changed)
            if not count:
                return 0
            try:
                self._write(changed)
            except Exception:
                # Keep what could not be written for the next flush; newer observations win.
                with self._lock:
                    for key, seen in changed.items():
                        newer = self._changed.get(key)
                        if newer is not None:
                            seen.last_ms = newer.last_ms
                            seen.latest = _merged(seen.latest, newer.latest)
                        self._changed[key] = seen
                raise
            return count

    def _write(self, changed: dict[tuple[str, str], _Seen]) -> None:
        """Write every device of `changed`, removing each chunk from it once committed."""
        # In short transactions: with SQLite a ticket waits for the writer,
        # and a whole fleet reporting every second would make one flush a long wait.
        keys = list(changed)
        for start in range(0, len(keys), FLUSH_CHUNK):
            if start:
                # A lock does not queue its waiters: without a pause, this thread would take
                # the writer's turn again before a waiting ticket wakes up.
                time.sleep(TURN_PAUSE_S)
            chunk = keys[start : start + FLUSH_CHUNK]
            self._write_chunk([(key, changed[key]) for key in chunk])
            for key in chunk:
                del changed[key]

    def _write_chunk(self, chunk: list[tuple[tuple[str, str], _Seen]]) -> None:
        """Insert or update the rows of these devices, one executemany of one upsert.

        The database merges the new points into those of the row, so nothing of a device is
        kept here once it is written, and no row is read back. A device registered meanwhile
        (through the API) is there by the time of the upsert, which then updates it.
        """
        times: dict[int, datetime] = {}  # the devices of a batch share its arrival time

        def at(ms: int) -> datetime:
            t = times.get(ms)
            if t is None:
                t = times[ms] = from_ms(ms)
            return t

        rows: list[dict[str, Any]] = []
        for (site, device_id), seen in chunk:
            rows.append(
                {
                    "b_site": site,
                    "b_device_id": device_id,
                    "b_device_type": seen.device_type,
                    "b_first_seen": at(seen.first_ms),
                    "b_last_seen": at(seen.last_ms),
                    # Encoded once, with msgspec: the column's serializer takes it as it is.
                    "b_latest": _NO_POINTS
                    if seen.latest is None
                    else EncodedJson(_ENCODER.encode(seen.latest)),
                }
            )
        if self._upsert is None:
            self._upsert = self._upsert_statement()
        with self._db.session() as s:
            s.connection().execute(self._upsert, rows)

    def _upsert_statement(self) -> Insert:
        """INSERT ... ON CONFLICT (site, device_id) DO UPDATE, in the dialect of the records.

        On conflict: first_seen only if the row has none (a device registered ahead has none
        until it reports), last_seen, and the latest values merged into the row's (newer points
        win); device_type, registered and what was registered are left as they are.
        """
        table = cast(Table, Device.__table__)
        c = table.c
        values: dict[str, Any] = {
            name: bindparam(f"b_{name}", type_=c[name].type)
            for name in ("site", "device_id", "device_type", "first_seen", "last_seen", "latest")
        }
        values["registered"] = false()
        # The dialect's insert is imported only for the dialect in use: PostgreSQL's module is
        # about 2 MB of memory that a service on SQLite would never use.
        if self._db.engine.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import JSONB
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            # A new row takes its id from the sequence only when the device has no row yet: the
            # default would be drawn for every row of the upsert, updates included (PostgreSQL
            # draws it before it finds the conflict), and an integer id would run out.
            known = table.alias("known")
            values["id"] = func.coalesce(
                select(known.c.id)
                .where(known.c.site == values["site"], known.c.device_id == values["device_id"])
                .scalar_subquery(),
                literal_column(f"nextval(pg_get_serial_sequence('{table.name}', '{c.id.name}'))"),
            )
            pg = pg_insert(table).values(values)
            # The column is json, which has no ||: merged as jsonb, stored as json again. Like
            # SQLite's json_patch below for the values the contract allows (a null would be kept
            # here rather than delete the point).
            merged = sql_cast(
                func.coalesce(sql_cast(c.latest, JSONB), literal_column("'{}'::jsonb")).op("||")(
                    sql_cast(pg.excluded.latest, JSONB)
                ),
                c.latest.type,
            )
            return pg.on_conflict_do_update(
                index_elements=[c.site, c.device_id],
                set_={
                    "first_seen": func.coalesce(c.first_seen, pg.excluded.first_seen),
                    "last_seen": pg.excluded.last_seen,
                    "latest": merged,
                },
            )
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        lite = sqlite_insert(table).values(values)
        return lite.on_conflict_do_update(
            index_elements=[c.site, c.device_id],
            set_={
                "first_seen": func.coalesce(c.first_seen, lite.excluded.first_seen),
                "last_seen": lite.excluded.last_seen,
                # json_patch is RFC 7396's merge: a null in the patch would delete the point,
                # and an object would be merged into the old one. Neither is sent: the
                # contract's metric values are numbers, booleans and strings (NaN refused).
                "latest": func.json_patch(
                    func.coalesce(c.latest, literal_column("'{}'")), lite.excluded.latest
                ),
            },
        )

    def register(self, fields: dict[str, Any]) -> Device:
        """Register (or update) a device ahead of its first message."""
        if fields["device_type"] not in DEVICE_TYPES:
            raise ValueError(f"device_type: unknown {fields['device_type']!r}")
        with self._db.session() as s:
            device = s.scalars(
                select(Device).where(Device.site == fields["site"], Device.device_id == fields["device_id"])
            ).one_or_none()
            if device is None:
                device = Device(latest={}, **fields)
                s.add(device)
            else:
                for name, value in fields.items():
                    setattr(device, name, value)
            device.registered = True
        return device

    def load_inventory(self, path: Path) -> list[Device]:
        """Register every device of an inventory file (YAML: a list of devices)."""
        entries = yaml.safe_load(path.read_text()) or []
        if not isinstance(entries, list):
            raise ValueError(f"{path}: expected a list of devices")
        return [self.register(dict(e)) for e in entries]

    def presence(self) -> Sequence[tuple[str, str, bool]]:
        """(site, device id, ever heard from) of every known device: the columns only, for counting."""
        with self._db.read() as s:
            return [
                (site, device_id, seen)
                for site, device_id, seen in s.execute(
                    select(Device.site, Device.device_id, Device.last_seen.is_not(None))
                )
            ]

    def list(self, site: str | None = None) -> Sequence[Device]:
        """Every known device."""
        q = select(Device).order_by(Device.site, Device.device_id)
        if site:
            q = q.where(Device.site == site)
        with self._db.read() as s:
            return s.scalars(q).all()

    def get(self, site: str, device_id: str) -> Device | None:
        """One device."""
        with self._db.read() as s:
            return s.scalars(
                select(Device).where(Device.site == site, Device.device_id == device_id)
            ).one_or_none()
