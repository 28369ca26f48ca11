"""A fault scenario as loaded: its site, devices, steps in device time, and what it must produce."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ground.contract import Kind
from simulators.scenario_expect import ExpectedAlarm, ExpectedTicket


@dataclass(frozen=True, slots=True)
class ScenarioDevice:
    """A device of the story and how often it reports its state."""

    device_type: str
    device_id: str
    report_every_ms: int
    telemetry: Mapping[str, Any] = field(default_factory=dict)  # state before the first step


@dataclass(frozen=True, slots=True)
class Step:
    """At device time `at_ms` after the start, one device sends one message.

    `body` is the metrics for telemetry, `{"code", "state"?, "detail"?}` for an event and
    `{"state"}` for a status.
    """

    at_ms: int
    device_id: str
    kind: Kind
    body: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Scenario:
    """A loaded, checked scenario file."""

    name: str
    description: str
    site: str
    start_ms: int | None  # device time of t=0; None: now, when played
    duration_ms: int
    devices: tuple[ScenarioDevice, ...]
    steps: tuple[Step, ...]
    tickets: tuple[ExpectedTicket, ...]
    alarms: tuple[ExpectedAlarm, ...] = ()
    path: Path | None = None

    def device(self, device_id: str) -> ScenarioDevice:
        """The device with this id; KeyError if the story has none."""
        for d in self.devices:
            if d.device_id == device_id:
                return d
        raise KeyError(device_id)
