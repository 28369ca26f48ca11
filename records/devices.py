"""The device directory: what is registered, what has reported, and each device's latest values."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select

from facility.contract import DEVICE_TYPES, Kind, Message
from records.db import Database
from records.models import Device

# Device ids per IN (...) look-up, well under every database's limit on bound parameters.
LOOKUP_CHUNK = 500


def online(seen: bool, offline_alarm: bool) -> bool | None:
    """Online unless the offline rule holds; unknown for a device never heard from and not flagged."""
    return not offline_alarm if seen or offline_alarm else None


@dataclass(slots=True)
class _Seen:
    device_type: str
    first_seen: datetime
    last_seen: datetime
    latest: dict[str, Any] = field(default_factory=dict)


class DeviceDirectory:
    """Keeps the last state of every device in memory and writes what changed every few seconds.

    Writing a row per message would cost more than storing the reading; the API reads the
    database, so it lags the devices by at most one flush.
    """

    def __init__(self, db: Database) -> None:
        self._db = db
        self._lock = threading.Lock()
        self._changed: dict[tuple[str, str], _Seen] = {}

    def observe(self, messages: Sequence[Message], arrival_ms: int) -> None:
        """Note the devices these messages came from and their telemetry."""
        at = datetime.fromtimestamp(arrival_ms / 1000, UTC)
        with self._lock:
            for m in messages:
                key = (m.site, m.device_id)
                seen = self._changed.get(key)
                if seen is None:
                    seen = self._changed[key] = _Seen(m.device_type, at, at)
                seen.last_seen = at
                if m.kind is Kind.TELEMETRY:
                    seen.latest.update(m.body)

    def flush(self) -> int:
        """Write what changed since the last flush; returns how many devices."""
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
        ids_by_site: dict[str, list[str]] = {}
        for site, device_id in changed:
            ids_by_site.setdefault(site, []).append(device_id)
        with self._db.session() as s:
            # Only the rows that changed: a site's whole fleet, loaded every flush, would hold
            # the records' writer for longer as the site grows, and a ticket waits for it.
            rows: dict[tuple[str, str], Device] = {}
            for site, ids in ids_by_site.items():
                for start in range(0, len(ids), LOOKUP_CHUNK):
                    chunk = ids[start : start + LOOKUP_CHUNK]
                    found = s.scalars(select(Device).where(Device.site == site, Device.device_id.in_(chunk)))
                    rows.update(((d.site, d.device_id), d) for d in found)
            for (site, device_id), seen in changed.items():
                device = rows.get((site, device_id))
                if device is None:
                    device = Device(
                        site=site,
                        device_id=device_id,
                        device_type=seen.device_type,
                        registered=False,
                        first_seen=seen.first_seen,
                        latest={},
                    )
                    s.add(device)
                device.first_seen = device.first_seen or seen.first_seen
                device.last_seen = seen.last_seen
                device.latest = {**(device.latest or {}), **seen.latest}

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

    def presence(self) -> list[tuple[str, str, bool]]:
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
