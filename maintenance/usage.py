"""Maintenance by use: a counter's rise and the hours a boolean was true, from the telemetry devices send.

Pure. A device's use under a plan is kept as `UseState` (the `maintenance_use` row): the counter's
value when counting began, the seconds counted running, and the last reading's time and running
flag. Readings are applied in device time; one not newer than the last (a redelivery, a replay) is
ignored, so nothing is counted twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, NamedTuple

# A silence longer than this is not counted as running: devices report at least every few minutes,
# so the device was off the network and may have stopped unheard.
MAX_GAP = timedelta(hours=1)


class Trigger(StrEnum):
    """What opened a work order."""

    CALENDAR = "calendar"
    COUNTER = "counter"
    RUNNING_HOURS = "running_hours"


class UseRule(NamedTuple):
    """Every `every` of a metric: a counter's rise, or hours of a boolean being true."""

    metric: str
    every: float


@dataclass
class UseState:
    """A device's use under one plan since its last work order."""

    counter_base: float | None = None
    running_s: float = 0.0
    last_ts: datetime | None = None
    last_running: bool | None = None

    def restart(self) -> None:
        """A work order opened: count again from the next reading (the running flag stays known)."""
        self.counter_base = None
        self.running_s = 0.0


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def apply_reading(
    state: UseState,
    ts: datetime,
    metrics: Mapping[str, Any],
    counter: UseRule | None,
    running: UseRule | None,
) -> Trigger | None:
    """Apply one reading to `state`; the trigger whose threshold it reached (counting restarts), or None."""
    if state.last_ts is not None and ts <= state.last_ts:
        return None
    reached: Trigger | None = None
    if counter is not None and (value := _number(metrics.get(counter.metric))) is not None:
        if state.counter_base is None or value < state.counter_base:
            state.counter_base = value  # first seen, or the counter was reset (a controller replaced)
        elif value - state.counter_base >= counter.every:
            reached = Trigger.COUNTER
    if running is not None:
        # Report by exception: a reading without the flag means it has not changed.
        if state.last_running and state.last_ts is not None:
            state.running_s += min(ts - state.last_ts, MAX_GAP).total_seconds()
        flag = metrics.get(running.metric)
        if isinstance(flag, bool):
            state.last_running = flag
        if reached is None and state.running_s >= running.every * 3600:
            reached = Trigger.RUNNING_HOURS
    state.last_ts = ts
    if reached is not None:
        state.restart()
        if counter is not None and (value := _number(metrics.get(counter.metric))) is not None:
            state.counter_base = value
    return reached
