"""A fire panel's statuses to contract events: which bits raise which codes, and each component's restore."""

from __future__ import annotations

from gateway.gb26875.events import Panel
from gateway.gb26875.frames import TimeLabel
from gateway.gb26875.units import ComponentFlag as C
from gateway.gb26875.units import ComponentStatus, SystemStatus
from gateway.gb26875.units import SystemFlag as S
from ground.contract import Kind, Message
from rules.catalogue import default_catalogue
from rules.engine import Engine

AT = TimeLabel(5, 30, 14, 18, 5, 24)


def status(loop: int, point: int, flags: int, component_type: int = 42) -> ComponentStatus:
    return ComponentStatus.at(loop, point, flags, "3F 電梯廳 感煙探測器", AT, component_type=component_type)


def codes(events: list[dict[str, object]]) -> list[tuple[object, object]]:
    return [(e["code"], e["state"]) for e in events]


def test_a_fire_alarm_raises_once_and_its_restore_clears_with_the_component() -> None:
    panel = Panel()
    raised = panel.component(status(1, 23, C.NORMAL | C.FIRE_ALARM))
    assert raised == [
        {
            "code": "FIRE_ALARM",
            "state": "raised",
            "detail": {
                "component": "L01-A023",
                "component_type": 42,
                "description": "3F 電梯廳 感煙探測器",
                "system_type": 1,
                "system_address": 1,
                "signals": ["fire_alarm"],
                "time": "2024-05-18T14:30:05",
            },
        }
    ]
    assert panel.component(status(1, 23, C.NORMAL | C.FIRE_ALARM)) == []
    cleared = panel.component(status(1, 23, C.NORMAL))
    assert codes(cleared) == [("FIRE_ALARM", "cleared")]
    assert cleared[0]["detail"]["component"] == "L01-A023"
    assert panel.component(status(1, 23, C.NORMAL)) == []


def test_each_component_restores_on_its_own_and_the_rules_clear_with_the_last() -> None:
    panel = Panel()
    engine = Engine(default_catalogue())

    def apply(events: list[dict[str, object]], ts: int) -> list[tuple[str, str]]:
        out = [
            e
            for b in events
            for e in engine.process(Message("s1", "fire_panel", "fp-1", Kind.EVENT, ts, None, b), ts)
        ]
        return [(e.kind, e.rule) for e in out]

    first = panel.component(status(1, 23, C.NORMAL | C.FIRE_ALARM))
    assert apply(first, 1000) == [("raised", "fire_alarm")]
    second = panel.component(status(2, 5, C.NORMAL | C.FIRE_ALARM))
    assert apply(second, 2000) == [("raised", "fire_alarm")]  # another component: the ticket hears of it
    restored = panel.component(status(1, 23, C.NORMAL))
    assert codes(restored) == [("FIRE_ALARM", "cleared")] and restored[0]["detail"]["component"] == "L01-A023"
    assert apply(restored, 3000) == []  # L02-A005 still in alarm
    assert apply(panel.component(status(2, 5, C.NORMAL)), 4000) == [("cleared", "fire_alarm")]


def test_faults_shields_supervisory_and_actuations_map_to_the_contract_codes() -> None:
    panel = Panel()
    assert codes(panel.component(status(1, 1, C.NORMAL | C.FAULT))) == [("FAULT", "raised")]
    # A power fault of the same component keeps FAULT held: nothing new until both are gone.
    assert panel.component(status(1, 1, C.NORMAL | C.POWER_FAULT)) == []
    assert codes(panel.component(status(1, 1, C.NORMAL))) == [("FAULT", "cleared")]
    shielded = panel.component(status(1, 2, C.NORMAL | C.SHIELDED))
    assert codes(shielded) == [("SUPERVISORY", "raised")]
    assert shielded[0]["detail"]["signals"] == ["shielded"]
    assert codes(panel.component(status(1, 3, C.NORMAL | C.SUPERVISORY))) == [("SUPERVISORY", "raised")]
    assert codes(panel.component(status(3, 1, C.NORMAL | C.START, 91))) == [("PUMP_START", "raised")]
    assert codes(panel.component(status(3, 2, C.NORMAL | C.FEEDBACK, 96))) == [("SPRINKLER_FLOW", "raised")]
    assert panel.component(status(3, 3, C.NORMAL | C.START | C.FEEDBACK, 85)) == []  # an input module
    both = panel.component(status(1, 4, C.NORMAL | C.FIRE_ALARM | C.FAULT))
    assert codes(both) == [("FIRE_ALARM", "raised"), ("FAULT", "raised")]


def test_a_component_under_test_says_so() -> None:
    event = Panel().component(status(1, 23, C.FIRE_ALARM))[0]
    assert event["detail"]["test"] is True


def test_system_status_holds_codes_and_reports_power_by_change() -> None:
    panel = Panel()
    events, telemetry = panel.system(SystemStatus(1, 1, S.NORMAL, AT))
    assert (events, telemetry) == ([], {"metrics": {"main_power_ok": True, "backup_power_ok": True}})
    assert panel.system(SystemStatus(1, 1, S.NORMAL, AT)) == ([], None)
    events, telemetry = panel.system(SystemStatus(1, 1, S.NORMAL | S.BACKUP_POWER_FAULT | S.FIRE_ALARM, AT))
    assert codes(events) == [("FIRE_ALARM", "raised")]
    assert events[0]["detail"]["component"] == "S01"
    assert telemetry == {"metrics": {"main_power_ok": True, "backup_power_ok": False}}
    # The component's alarm and the system's are two components of the code, each restoring on its own.
    assert codes(panel.component(status(1, 23, C.NORMAL | C.FIRE_ALARM))) == [("FIRE_ALARM", "raised")]
    assert codes(panel.component(status(1, 23, C.NORMAL))) == [("FIRE_ALARM", "cleared")]
    events, _ = panel.system(SystemStatus(1, 1, S.NORMAL | S.BUS_FAULT, AT))
    assert codes(events) == [("FIRE_ALARM", "cleared"), ("FAULT", "raised")]
    assert events[0]["detail"]["component"] == "S01"
