"""The device directory: what is registered, what has reported, and each device's latest values."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import msgspec
import yaml
from sqlalchemy import Table, bindparam, func, insert, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ground.contract import DEVICE_TYPES, Kind, Message
from records.db import Database, EncodedJson
from records.models import Device

# Devices per flush transaction (a few ms of the writer's turn); also bounds the keys of one
# IN (...) look-up.
FLUSH_CHUNK = 50
TURN_PAUSE_S = 0.001


def online(seen: bool, offline_alarm: bool) -> bool | None:
    """Online unless the offline rule holds; unknown for a device never heard from and not flagged."""
    return not offline_alarm if seen or offline_alarm else None


@dataclass(slots=True)
class _Seen:
    device_type: str
    first_seen: datetime
    last_seen: datetime
    latest: dict[str, Any] = field(default_factory=dict)


# Each device's latest values are kept as the JSON written to its row: a third of the memory of
# the dict, for every device for as long as the service runs; decoded again only at a flush.
_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(dict[str, Any])


def _encoded(latest: dict[str, Any]) -> EncodedJson:
    """Latest values for the row's JSON column, encoded once: the same bytes are kept for the next flush."""
    return EncodedJson(_ENCODER.encode(latest))


class DeviceDirectory:
    """Keeps the last state of every device in memory and writes what changed every few seconds.

    Writing a row per message would cost more than storing the reading; the API reads the
    database, so it lags the devices by at most one flush.
    """

    def __init__(self, db: Database) -> None:
        self._db = db
        self._lock = threading.Lock()
        self._changed: dict[tuple[str, str], _Seen] = {}
        # Latest values of every device this process has written, as written (JSON): a flush
        # merges into them without reading the rows back.
        self._latest: dict[tuple[str, str], bytes] = {}
        self._flushing = threading.Lock()

    def observe(self, messages: Sequence[Message], arrival_ms: int) -> None:
        """Note the devices these messages came from and their telemetry."""
        at = datetime.fromtimestamp(arrival_ms / 1000, UTC)
        with self._lock:
            for m in messages:
                key = (m.site, m.device_id)
                seen = self._changed.get(key)
                if seen is None:
                    seen = self._changed[key] = _Seen(sys.intern(m.device_type), at, at)
                seen.last_seen = at
                if m.kind is Kind.TELEMETRY:
                    seen.latest.update(m.body)

    def flush(self) -> int:
        """Write what changed since the last flush; returns how many devices."""
        # One flush at a time (the timer's and the one at stop), so an older one never writes last.
        with self._flushing:
            with self._lock:
                changed, self._changed = self._changed, {}
            if not changed:
                return 0
            try:
                self._write(changed)
            except Exception:
                # Keep what could not be written for the next flush; newer observations win.
                with self._lock:
                    for key, seen in changed.items():
                        newer = self._changed.get(key)
                        if newer is not None:
                            seen.last_seen = newer.last_seen
                            seen.latest.update(newer.latest)
                        self._changed[key] = seen
                raise
            return len(changed)

    def _write(self, changed: dict[tuple[str, str], _Seen]) -> None:
        # In short transactions: with SQLite a ticket waits for the writer,
        # and a whole fleet reporting every second would make one flush a long wait.
        keys = list(changed)
        for start in range(0, len(keys), FLUSH_CHUNK):
            if start:
                # A lock does not queue its waiters: without a pause, this thread would take
                # the writer's turn again before a waiting ticket wakes up.
                time.sleep(TURN_PAUSE_S)
            chunk = {k: changed[k] for k in keys[start : start + FLUSH_CHUNK]}
            try:
                self._write_chunk(chunk)
            except IntegrityError:
                # A device registered through the API since the look-up: its row is there now.
                self._write_chunk(chunk)

    def _write_chunk(self, changed: dict[tuple[str, str], _Seen]) -> None:
        """Update the rows of devices already known and insert the rest, each as one executemany."""
        table = cast(Table, Device.__table__)
        with self._db.session() as s:
            stored = self._stored_latest(s, [k for k in changed if k not in self._latest])
            updates: list[dict[str, Any]] = []
            inserts: list[dict[str, Any]] = []
            for (site, device_id), seen in changed.items():
                key = (site, device_id)
                written = self._latest.get(key)
                latest = stored.get(key) if written is None else _DECODER.decode(written)
                if latest is None:
                    inserts.append(
                        {
                            "site": site,
                            "device_id": device_id,
                            "device_type": seen.device_type,
                            "registered": False,
                            "first_seen": seen.first_seen,
                            "last_seen": seen.last_seen,
                            "latest": _encoded(seen.latest),
                        }
                    )
                    continue
                updates.append(
                    {
                        "b_site": site,
                        "b_device_id": device_id,
                        "b_first_seen": seen.first_seen,
                        "b_last_seen": seen.last_seen,
                        # A message may carry only some points: merged into those written before.
                        "b_latest": _encoded({**latest, **seen.latest}),
                    }
                )
            if updates:
                c = table.c
                stmt = (
                    update(table)
                    .where(c.site == bindparam("b_site"), c.device_id == bindparam("b_device_id"))
                    .values(
                        # A device registered ahead keeps no first_seen until it reports.
                        first_seen=func.coalesce(
                            c.first_seen, bindparam("b_first_seen", type_=c.first_seen.type)
                        ),
                        last_seen=bindparam("b_last_seen", type_=c.last_seen.type),
                        latest=bindparam("b_latest", type_=c.latest.type),
                    )
                )
                s.connection().execute(stmt, updates)
            if inserts:
                s.connection().execute(insert(table), inserts)
        # Only once committed: a failed flush is tried again from what the database holds.
        known = self._latest
        for row in updates:
            known[(row["b_site"], row["b_device_id"])] = row["b_latest"].encoded
        for row in inserts:
            known[(row["site"], row["device_id"])] = row["latest"].encoded

    @staticmethod
    def _stored_latest(s: Session, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
        """Latest values of those of these devices that have a row (registered, or seen before a restart)."""
        if not keys:
            return {}
        found = s.execute(
            select(Device.site, Device.device_id, Device.latest).where(
                tuple_(Device.site, Device.device_id).in_(keys)
            )
        )
        return {(site, device_id): latest or {} for site, device_id, latest in found}

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
