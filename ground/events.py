"""An alarm raised or cleared: what the rules engine and patrols hand to tickets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ground.severity import Severity


@dataclass(frozen=True, slots=True, kw_only=True)
class AlarmEvent:
    """An alarm raised or cleared on one device by one rule."""

    kind: Literal["raised", "cleared"]
    site: str
    device_type: str
    device_id: str
    rule: str  # rule id; "offline" for the deadman
    severity: Severity
    ts: int  # device time (ms) the condition began (raised) or ended (cleared)
    title: str
    detail: dict[str, Any]
    source: str = "alarm"  # "patrol" for a patrol's alarms (missed checkpoints, unknown tags)
    round_id: int | None = None  # the patrol round it concerns
