"""One rule as the file defines it, an override of it, and the built-in offline rule's policy."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

from ground.contract import DEVICE_TYPES
from ground.severity import Severity
from rules.conditions import Condition

OFFLINE = "offline"  # the id of the built-in deadman rule


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule, resolved for a device: a condition on telemetry, a device event, or the offline deadman."""

    id: str
    device_type: str
    title: str
    severity: Severity
    when: Condition | None = None
    clear_when: Condition | None = None
    event: str | None = None
    for_ms: int = 0
    clear_for_ms: int = 0
    held_in_maintenance: bool = True
    enabled: bool = True
    reads: tuple[str, ...] = ()  # value keys shown in an alarm's detail

    @property
    def kind(self) -> Literal["threshold", "event", "offline"]:
        """What raises the rule: a condition on telemetry, a device event, or silence."""
        if self.when is not None:
            return "threshold"
        return "event" if self.event is not None else "offline"


@dataclass(frozen=True, slots=True)
class Override:
    """Changes to one rule for every device, a site, or one device of a site."""

    rule: str
    site: str | None
    device_id: str | None
    changes: dict[str, Any]  # Rule field → value, already compiled


@dataclass(frozen=True, slots=True)
class OfflinePolicy:
    """The built-in offline rule: silence for `factor` times the reporting interval, or a status `offline`."""

    factor: float
    severity: Severity
    by_type: dict[str, Severity]
    intervals_s: dict[str, int]
    held_in_maintenance: bool
    title: str

    def interval_s(self, device_type: str) -> int:
        """The reporting interval assumed for the type: the file's override, else the contract's."""
        if device_type in self.intervals_s:
            return self.intervals_s[device_type]
        dtype = DEVICE_TYPES.get(device_type)
        return dtype.report_interval_s if dtype else 60

    def rule(self, device_type: str) -> Rule:
        """The offline rule for a device type, before overrides."""
        return Rule(
            OFFLINE,
            device_type,
            self.title,
            self.by_type.get(device_type, self.severity),
            held_in_maintenance=self.held_in_maintenance,
        )


def reads(*conditions: Condition | None) -> tuple[str, ...]:
    """The value keys the conditions read, in order, each once."""
    keys: dict[str, None] = {}
    for c in conditions:
        if c is not None:
            keys.update(dict.fromkeys(c.reads))
    return tuple(keys)


def changed(rule: Rule, changes: dict[str, Any]) -> Rule:
    """The rule with an override's changes, reading what its new conditions read."""
    new = replace(rule, **changes)
    return replace(new, reads=reads(new.when, new.clear_when))
