"""A fire panel's statuses turned into contract events (raised, cleared) and its power into telemetry.

Component bits map to the fire_panel codes: fire alarm → FIRE_ALARM; fault and power fault → FAULT;
supervisory and shielded (屏蔽, disabled) → SUPERVISORY, since a disabled detector is a safety function
lost, which the rules class with supervisory signals, not with routine faults; start or feedback of a
fire, sprinkler or foam pump → PUMP_START; of a water-flow indicator, alarm valve or pressure switch →
SPRINKLER_FLOW. A system status (type 1) counts as one more component (`S01`) holding its fire alarm,
fault (bus fault too) and supervisory bits, and gives main_power_ok and backup_power_ok.

Each component's restore is a cleared naming it: the rules engine tracks a code per component and
clears its alarm when the last one has restored, so a detector's restore does not clear the fire
alarm another detector still holds, and the ticket lists every component that alarmed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.gb26875.frames import TimeLabel
from gateway.gb26875.units import ComponentFlag, ComponentStatus, SystemFlag, SystemStatus

PUMPS = frozenset({91, 95, 105})  # 消防水泵, 噴淋泵, 泡沫液泵
FLOW = frozenset({96, 98, 99})  # 水流指示器, 報警閥, 壓力開關
Key = tuple[str, int, int, int]  # kind, system type, system address, component address
Body = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Condition:
    """A contract code held while any of `bits` is set, for the component types given (None: all)."""

    code: str
    bits: int
    types: frozenset[int] | None = None


_ACTUATED = ComponentFlag.START | ComponentFlag.FEEDBACK
COMPONENT_CONDITIONS = (
    Condition("FIRE_ALARM", ComponentFlag.FIRE_ALARM),
    Condition("FAULT", ComponentFlag.FAULT | ComponentFlag.POWER_FAULT),
    Condition("SUPERVISORY", ComponentFlag.SUPERVISORY | ComponentFlag.SHIELDED),
    Condition("PUMP_START", _ACTUATED, PUMPS),
    Condition("SPRINKLER_FLOW", _ACTUATED, FLOW),
)
SYSTEM_CONDITIONS = (
    Condition("FIRE_ALARM", SystemFlag.FIRE_ALARM),
    Condition("FAULT", SystemFlag.FAULT | SystemFlag.BUS_FAULT),
    Condition("SUPERVISORY", SystemFlag.SUPERVISORY | SystemFlag.SHIELDED),
)


class Panel:
    """One fire panel's last statuses, kept for as long as the server runs (across reconnections)."""

    def __init__(self) -> None:
        self._status: dict[Key, int] = {}
        self._power: dict[tuple[int, int], tuple[bool, bool]] = {}
        self.metrics: Body | None = None  # the last telemetry sent

    def component(self, obj: ComponentStatus) -> list[Body]:
        """The events one component status brings (none when it repeats the last)."""
        key = ("component", obj.system_type, obj.system_address, obj.address)
        base = {
            "component": obj.label,
            "component_type": obj.component_type,
            "description": obj.description,
            "system_type": obj.system_type,
            "system_address": obj.system_address,
        }
        conditions = [c for c in COMPONENT_CONDITIONS if c.types is None or obj.component_type in c.types]
        return self._update(key, obj.status, conditions, base, ComponentFlag, obj.time)

    def system(self, obj: SystemStatus) -> tuple[list[Body], Body | None]:
        """The events one system status brings, and the telemetry when its power changed."""
        key = ("system", obj.system_type, obj.system_address, 0)
        base = {
            "component": f"S{obj.system_address:02d}",
            "system_type": obj.system_type,
            "system_address": obj.system_address,
        }
        events = self._update(key, obj.status, SYSTEM_CONDITIONS, base, SystemFlag, obj.time)
        self._power[obj.system_type, obj.system_address] = (
            not obj.status & SystemFlag.MAIN_POWER_FAULT,
            not obj.status & SystemFlag.BACKUP_POWER_FAULT,
        )
        metrics = {
            "main_power_ok": all(main for main, _ in self._power.values()),
            "backup_power_ok": all(backup for _, backup in self._power.values()),
        }
        if metrics == self.metrics:
            return events, None
        self.metrics = metrics
        return events, {"metrics": metrics}

    def _update(
        self,
        key: Key,
        status: int,
        conditions: list[Condition] | tuple[Condition, ...],
        base: Body,
        flags: type[ComponentFlag] | type[SystemFlag],
        time: TimeLabel,
    ) -> list[Body]:
        # A component never seen before is taken as normal: its first alarm is news, its first
        # normal status is not.
        old = self._status.get(key, flags.NORMAL)
        self._status[key] = status
        out: list[Body] = []
        for condition in conditions:
            was, now = old & condition.bits, status & condition.bits
            if bool(was) == bool(now):
                continue
            if now:
                out.append(_event(condition.code, "raised", base, flags(now), status, time))
            else:
                out.append(_event(condition.code, "cleared", base, flags(was), status, time))
        return out


def _event(
    code: str, state: str, base: Body, signals: ComponentFlag | SystemFlag, status: int, time: TimeLabel
) -> Body:
    detail = {**base, "signals": [str(f.name).lower() for f in type(signals) if f in signals]}
    if not status & 1:
        detail["test"] = True  # bit 0 clear: the component or system is under test
    moment = time.to_datetime()
    if moment is not None:
        detail["time"] = moment.isoformat()  # the device's local time of the status
    return {"code": code, "state": state, "detail": detail}
