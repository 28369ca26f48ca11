"""Per-device `seq` accounting: gaps are data loss, repeats are duplicate deliveries."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

# Missing seqs remembered per device so a late arrival can fill its gap; older gaps stay lost.
MAX_MISSING = 10_000


class Verdict(StrEnum):
    """What one observed `seq` means."""

    NEW = "new"
    LATE = "late"  # fills an earlier gap: new data, and one reading less lost
    DUPLICATE = "duplicate"
    RESET = "reset"  # the device started counting again (reboot): new data


@dataclass(slots=True)
class DeviceSeq:
    """What we know of one device's sequence."""

    high: int
    high_ts: int
    missing: set[int] = field(default_factory=set)
    lost: int = 0
    duplicates: int = 0


class SeqTracker:
    """Classifies each (device, seq) and keeps loss and duplicate counts per device.

    A seq at or below the highest seen that is not a known gap is a duplicate when its device
    time is not newer than the highest seen; a redelivery carries its original `ts`. With a newer
    `ts` it is a counter reset, as after a device reboot, and starts a new count.
    """

    def __init__(self, state: dict[tuple[str, str], DeviceSeq] | None = None) -> None:
        self.devices: dict[tuple[str, str], DeviceSeq] = state or {}
        self.dirty: set[tuple[str, str]] = set()

    def observe(self, device: tuple[str, str], seq: int, ts: int) -> Verdict:
        """Record one seq of `device` ((site, device_id)) and say what it was."""
        d = self.devices.get(device)
        if d is None:
            self.devices[device] = DeviceSeq(seq, ts)
            self.dirty.add(device)
            return Verdict.NEW
        if seq > d.high:
            gap = seq - d.high - 1
            if gap:
                d.lost += gap
                if gap <= MAX_MISSING:
                    d.missing.update(range(d.high + 1, seq))
                    if len(d.missing) > MAX_MISSING:
                        for old in sorted(d.missing)[: len(d.missing) - MAX_MISSING]:
                            d.missing.discard(old)
            d.high, d.high_ts = seq, max(ts, d.high_ts)
            self.dirty.add(device)
            return Verdict.NEW
        if seq in d.missing:
            d.missing.discard(seq)
            d.lost -= 1
            self.dirty.add(device)
            return Verdict.LATE
        if ts > d.high_ts:
            self.devices[device] = DeviceSeq(seq, ts, lost=d.lost, duplicates=d.duplicates)
            self.dirty.add(device)
            return Verdict.RESET
        d.duplicates += 1
        self.dirty.add(device)
        return Verdict.DUPLICATE

    def take_dirty(self) -> list[tuple[tuple[str, str], DeviceSeq]]:
        """The devices changed since the last call, for persisting."""
        rows = [(key, self.devices[key]) for key in self.dirty]
        self.dirty = set()
        return rows

    @property
    def lost(self) -> int:
        """Readings never received, over all devices."""
        return sum(d.lost for d in self.devices.values())

    @property
    def duplicates(self) -> int:
        """Duplicate deliveries dropped, over all devices."""
        return sum(d.duplicates for d in self.devices.values())
