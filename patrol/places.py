"""Where a checkpoint is, and whether an alarm's place is one a guard passes: pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar


class Placed(Protocol):
    """Anything with a building, a floor and a location (a checkpoint, a device)."""

    @property
    def building(self) -> str | None: ...

    @property
    def floor(self) -> str | None: ...

    @property
    def location(self) -> str | None: ...


@dataclass(frozen=True)
class AlarmPlace:
    """Where an alarm is: its device's building, floor and location, and the ticket's location text."""

    building: str | None
    floor: str | None
    location: str | None
    ticket_location: str | None = None


def place_of(p: Placed) -> str | None:
    """How people read a place: "Tower A, floor 3, lift lobby"."""
    parts = [x for x in (p.building, p.floor and f"floor {p.floor}", p.location) if x]
    return ", ".join(parts) or None


def _same(a: str | None, b: str | None) -> bool:
    return bool(a and b and a.strip().casefold() == b.strip().casefold())


def closeness(alarm: AlarmPlace, cp: Placed) -> int:
    """2: the checkpoint's location is the alarm's; 1: the same floor of the same building; 0: elsewhere."""
    if cp.location and (_same(cp.location, alarm.location) or _same(cp.location, alarm.ticket_location)):
        return 2
    if cp.building and cp.floor and _same(cp.building, alarm.building) and _same(cp.floor, alarm.floor):
        return 1
    return 0


P = TypeVar("P", bound=Placed)


def nearest(alarm: AlarmPlace, checkpoints: Sequence[P]) -> P | None:
    """The first checkpoint looking at the alarm's place: by its location first, else by its floor."""
    best: P | None = None
    best_rank = 0
    for cp in checkpoints:
        rank = closeness(alarm, cp)
        if rank > best_rank:
            best, best_rank = cp, rank
    return best
