"""Report by exception: what changed past its deadband, a full snapshot every 10th report; and liveness."""

from __future__ import annotations

from typing import Any

from ground.contract import DEVICE_TYPES
from simulators.devices import DEADBAND

SNAPSHOT_EVERY = 10  # a full snapshot on the first report and every 10th after it
MISSED_POLLS_OFFLINE = 2  # one unanswered poll is a glitch; two in a row, the device is offline


class Reporter:
    """Decides which of a device's polled metrics to send; the deadbands are the simulators' unless given."""

    def __init__(self, device_type: str, deadbands: dict[str, float] | None = None) -> None:
        self._deadbands = {**DEADBAND, **(deadbands or {})}
        # The service calls a device offline after three quiet reporting intervals: send by two.
        self._quiet_ms = 2000 * DEVICE_TYPES[device_type].report_interval_s
        self._sent: dict[str, Any] = {}
        self._sent_ms: int | None = None
        self._reports = 0

    def report(self, metrics: dict[str, Any], t_ms: int) -> dict[str, Any]:
        """The metrics to publish for this poll ({} for none)."""
        snapshot = (
            self._reports % SNAPSHOT_EVERY == 0
            or self._sent_ms is None
            or t_ms - self._sent_ms >= self._quiet_ms
        )
        changed = dict(metrics) if snapshot else {k: v for k, v in metrics.items() if self._changed(k, v)}
        self._reports += 1
        if changed:
            self._sent.update(changed)
            self._sent_ms = t_ms
        return changed

    def _changed(self, name: str, value: Any) -> bool:
        old = self._sent.get(name)
        # Reaching or leaving zero always counts: a stop or a start is news, however small.
        if (
            isinstance(value, bool)
            or not isinstance(old, int | float)
            or isinstance(old, bool)
            or 0 in (value, old)
        ):
            return bool(value != old)
        return bool(abs(value - old) > self._deadbands.get(name, 0.0))


class Liveness:
    """Whether a device answers its polls: `online` at its first answer, `offline` after two misses."""

    def __init__(self) -> None:
        self.state: str | None = None  # None until the device has answered or missed enough
        self._missed = 0

    def answered(self) -> str | None:
        """The new state when this answer changes it."""
        self._missed = 0
        return self._set("online")

    def missed(self) -> str | None:
        """The new state when this miss changes it."""
        self._missed += 1
        return self._set("offline") if self._missed >= MISSED_POLLS_OFFLINE else None

    def _set(self, state: str) -> str | None:
        if self.state == state:
            return None
        self.state = state
        return state
