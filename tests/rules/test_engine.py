"""The rules engine, driven by injected messages: durations on device time, hysteresis, maintenance,
offline, rolling means, overrides, events, restarts and replays."""

from __future__ import annotations

import itertools
import json
import textwrap
from typing import Any

import pytest

from ground.contract import Kind, Message, decode
from ground.events import AlarmEvent
from ground.severity import Severity
from rules.catalogue import Catalogue, default_catalogue, load_rules
from rules.engine import Engine
from simulators.devices import build_fleet
from simulators.stream import messages

T0 = 1_795_749_124_000
S = 1000
MIN = 60 * S
SITE = "site-01"
CATALOGUE = default_catalogue()


class Device:
    """One simulated device: sends messages to an engine, device time in ms relative to T0."""

    def __init__(self, engine: Engine, device_type: str, device_id: str = "d-1", site: str = SITE) -> None:
        self.engine = engine
        self.device_type = device_type
        self.device_id = device_id
        self.site = site
        self.lag_ms = 0  # arrival (wall clock) minus device time
        self.seq: int | None = None  # the next seq to send, when the device numbers its messages

    def send(self, kind: Kind, at: int, body: dict[str, Any]) -> list[AlarmEvent]:
        m = Message(self.site, self.device_type, self.device_id, kind, T0 + at, self.seq, body)
        if self.seq is not None:
            self.seq += 1
        return self.engine.process(m, T0 + at + self.lag_ms)

    def tele(self, at: int, **metrics: Any) -> list[AlarmEvent]:
        return self.send(Kind.TELEMETRY, at, metrics)

    def event(self, at: int, code: str, state: str | None = None, **detail: Any) -> list[AlarmEvent]:
        return self.send(Kind.EVENT, at, {"code": code, "state": state, "detail": detail})

    def status(self, at: int, state: str) -> list[AlarmEvent]:
        return self.send(Kind.STATUS, at, {"state": state})


def brief(events: list[AlarmEvent], rule: str | None = None) -> list[tuple[str, str, str, int]]:
    """(kind, rule, severity, ts relative to T0) of the events, of one rule if given."""
    return [(e.kind, e.rule, str(e.severity), e.ts - T0) for e in events if rule is None or e.rule == rule]


LIFT_IDLE = {
    "floor": 3,
    "moving": False,
    "speed_mps": 0.0,
    "door": "open",
    "in_door_zone": True,
    "occupied": True,
    "service_mode": "normal",
    "run_count": 1000,
}

# Threshold rules of the contract: rule → (device type, quiet metrics, raising metrics, clearing metrics).
THRESHOLD_CASES: dict[str, tuple[str, dict[str, Any], dict[str, Any], dict[str, Any]]] = {
    "entrapment": (
        "elevator",
        LIFT_IDLE,
        {"door": "closed", "in_door_zone": False},
        {"in_door_zone": True, "door": "open"},
    ),
    "entrapment_at_landing": ("elevator", LIFT_IDLE, {"door": "closed"}, {"door": "opening"}),
    "stop_outside_door_zone": (
        "elevator",
        LIFT_IDLE,
        {"door": "closed", "in_door_zone": False, "occupied": False},
        {"in_door_zone": True},
    ),
    "door_open_while_moving": ("elevator", LIFT_IDLE, {"moving": True, "speed_mps": 1.2}, {"door": "closed"}),
    "fire_power_lost": (
        "fire_panel",
        {"main_power_ok": True, "backup_power_ok": True},
        {"backup_power_ok": False},
        {"backup_power_ok": True},
    ),
    "sprinkler_pressure_low": (
        "sprinkler_pipe",
        {"pressure_mpa": 0.5},
        {"pressure_mpa": 0.03},
        {"pressure_mpa": 0.1},
    ),
    "sprinkler_pressure_high": (
        "sprinkler_pipe",
        {"pressure_mpa": 0.5},
        {"pressure_mpa": 1.3},
        {"pressure_mpa": 1.1},
    ),
    "fire_tank_low": ("fire_water_tank", {"level_pct": 97}, {"level_pct": 79}, {"level_pct": 90}),
    "fire_pump_manual": (
        "fire_pump",
        {"running": False, "auto_mode": True, "power_ok": True},
        {"auto_mode": False},
        {"auto_mode": True},
    ),
    "breaker_tripped": (
        "lighting_circuit",
        {"on": True, "breaker_tripped": False, "power_w": 800, "lamp_failures": 0},
        {"breaker_tripped": True, "on": False},
        {"breaker_tripped": False},
    ),
    "lamp_failure": ("lighting_circuit", {"lamp_failures": 0}, {"lamp_failures": 2}, {"lamp_failures": 0}),
    "emergency_light_test_failed": (
        "emergency_light",
        {"last_test_duration_min": 95},
        {"last_test_duration_min": 22},
        {"last_test_duration_min": 92},
    ),
    "emergency_light_fault": ("emergency_light", {"fault": False}, {"fault": True}, {"fault": False}),
    "water_pump_fault": ("water_pump", {"fault": False, "running": True}, {"fault": True}, {"fault": False}),
    "water_tank_low": ("water_tank", {"level_pct": 70}, {"level_pct": 19.5}, {"level_pct": 30}),
    "sump_high": ("sump_pit", {"level_pct": 30}, {"level_pct": 80}, {"level_pct": 79}),
    "sump_flooding": ("sump_pit", {"level_pct": 30}, {"level_pct": 95}, {"level_pct": 94}),
    "garage_co_high": ("garage_co", {"co_mgm3": 4}, {"co_mgm3": 30}, {"co_mgm3": 29}),
    "garage_co_danger": ("garage_co", {"co_mgm3": 4}, {"co_mgm3": 100}, {"co_mgm3": 99}),
    "chiller_trip": ("chiller", {"tripped": False, "running": True}, {"tripped": True}, {"tripped": False}),
}
# Event rules of the contract: rule → (device type, event code, whether the event has a state).
EVENT_CASES = {
    "alarm_button": ("elevator", "ALARM_BUTTON", False),
    "fire_alarm": ("fire_panel", "FIRE_ALARM", True),
    "sprinkler_flow": ("fire_panel", "SPRINKLER_FLOW", True),
    "fire_panel_fault": ("fire_panel", "FAULT", True),
    "supervisory": ("fire_panel", "SUPERVISORY", True),
    "sos": ("patrol_reader", "SOS", False),
}
MEAN_CASES = {"co2_high": ("co2_ppm", 1000), "pm25_high": ("pm25_ugm3", 150)}


def test_every_default_rule_is_covered() -> None:
    assert {r.id for r in CATALOGUE.rules} == set(THRESHOLD_CASES) | set(EVENT_CASES) | set(MEAN_CASES)


@pytest.mark.parametrize("rule_id", sorted(THRESHOLD_CASES))
def test_threshold_rule_raises_after_its_duration_and_clears(rule_id: str) -> None:
    device_type, quiet, raising, clearing = THRESHOLD_CASES[rule_id]
    rule = CATALOGUE.rule(rule_id)
    severity = str(rule.severity)
    d = Device(Engine(CATALOGUE), device_type)
    assert d.tele(0, **quiet) == []
    began = 10 * S
    events = d.tele(began, **raising)
    if rule.for_ms == 0:
        assert brief(events, rule_id) == [("raised", rule_id, severity, began)]
    else:
        assert brief(events, rule_id) == []
        # Nothing until device time reaches began + for, however fast the messages come.
        assert brief(d.tele(began + rule.for_ms - 1, **raising), rule_id) == []
        events = d.tele(began + rule.for_ms, **raising)
        assert brief(events, rule_id) == [("raised", rule_id, severity, began)]
    (raised,) = [e for e in events if e.rule == rule_id]
    assert raised.title == rule.title and raised.device_id == "d-1" and raised.site == SITE
    assert set(raised.detail) == set(rule.reads)
    assert brief(d.tele(began + rule.for_ms + MIN, **raising), rule_id) == []  # no duplicate while active
    assert (SITE, "d-1", rule_id) in d.engine.active()
    end = began + rule.for_ms + 2 * MIN
    assert brief(d.tele(end, **clearing), rule_id) == [("cleared", rule_id, severity, end)]
    assert (SITE, "d-1", rule_id) not in d.engine.active()


@pytest.mark.parametrize("rule_id", sorted(r for r in THRESHOLD_CASES if CATALOGUE.rule(r).for_ms))
def test_pending_is_dropped_when_the_condition_ends_before_its_duration(rule_id: str) -> None:
    device_type, quiet, raising, _ = THRESHOLD_CASES[rule_id]
    rule = CATALOGUE.rule(rule_id)
    d = Device(Engine(CATALOGUE), device_type)
    d.tele(0, **quiet)
    d.tele(S, **raising)
    assert brief(d.tele(rule.for_ms // 2, **quiet), rule_id) == []
    assert brief(d.tele(rule.for_ms + 5 * S, **raising), rule_id) == []  # the duration starts again
    assert brief(d.engine.tick(T0 + rule.for_ms + 5 * S + rule.for_ms - 1), rule_id) == []
    assert brief(d.engine.tick(T0 + 2 * rule.for_ms + 5 * S), rule_id) == [
        ("raised", rule_id, str(rule.severity), rule.for_ms + 5 * S)
    ]


@pytest.mark.parametrize("rule_id", sorted(EVENT_CASES))
def test_event_rule_raises_with_its_class(rule_id: str) -> None:
    device_type, code, stateful = EVENT_CASES[rule_id]
    severity = str(CATALOGUE.rule(rule_id).severity)
    d = Device(Engine(CATALOGUE), device_type)
    state = "raised" if stateful else None
    events = d.event(5 * S, code, state, zone="3F-lift-lobby")
    assert brief(events) == [("raised", rule_id, severity, 5 * S)]
    assert events[0].detail == {"code": code, "state": state, "detail": {"zone": "3F-lift-lobby"}}
    if stateful:
        assert d.event(6 * S, code, "raised") == []  # one alarm while active
        assert brief(d.event(9 * S, code, "cleared")) == [("cleared", rule_id, severity, 9 * S)]
        assert d.event(10 * S, code, "cleared") == []
    else:
        assert d.engine.active() == [(SITE, "d-1", rule_id)]


def test_instantaneous_event_raises_on_every_occurrence_until_cleared_by_the_caller() -> None:
    d = Device(Engine(CATALOGUE), "elevator")
    for n in range(3):
        assert brief(d.event(n * S, "ALARM_BUTTON", floor=3)) == [
            ("raised", "alarm_button", "emergency", n * S)
        ]
    assert d.engine.active() == [(SITE, "d-1", "alarm_button")]
    version = d.engine.version
    d.engine.clear(SITE, "d-1", "alarm_button")
    assert d.engine.active() == [] and d.engine.version > version
    d.engine.clear(SITE, "d-1", "alarm_button")  # nothing to clear: no error
    d.engine.clear(SITE, "no-such-device", "alarm_button")


def test_events_without_a_rule_raise_nothing() -> None:
    d = Device(Engine(CATALOGUE), "elevator")
    assert d.event(0, "DOOR_LOCK_FAULT", "raised") == []
    assert Device(d.engine, "patrol_reader").event(0, "PATROL_SCAN", None, tag="cp-1", guard="g-1") == []


# Hysteresis.


def test_sprinkler_pressure_hovering_between_thresholds_raises_once_and_does_not_flap() -> None:
    d = Device(Engine(CATALOGUE), "sprinkler_pipe")
    d.tele(0, pressure_mpa=0.5)
    events: list[AlarmEvent] = []
    pressures = [0.04, 0.045, 0.04, 0.06, 0.049, 0.07, 0.09, 0.048, 0.099, 0.051, 0.0999, 0.03, 0.08]
    for n, p in enumerate(pressures):
        events += d.tele(10 * S + n * 30 * S, pressure_mpa=p)
    # Below 0.05 from 10 s to 100 s: raised at 10 s once 60 s had passed; never cleared below 0.10.
    assert brief(events) == [("raised", "sprinkler_pressure_low", "major", 10 * S)]
    end = 10 * S + len(pressures) * 30 * S
    assert brief(d.tele(end, pressure_mpa=0.10)) == [("cleared", "sprinkler_pressure_low", "major", end)]
    assert d.tele(end + 10 * S, pressure_mpa=0.09) == []  # between the thresholds: stays clear


def test_water_tank_low_clears_only_at_30_percent() -> None:
    d = Device(Engine(CATALOGUE), "water_tank")
    d.tele(0, level_pct=50)
    d.tele(MIN, level_pct=19)
    assert brief(d.tele(3 * MIN, level_pct=18)) == [("raised", "water_tank_low", "major", MIN)]
    for n, level in enumerate([20, 25, 29.9, 19, 29.99]):
        assert d.tele(4 * MIN + n * MIN, level_pct=level) == []
    assert brief(d.tele(10 * MIN, level_pct=30)) == [("cleared", "water_tank_low", "major", 10 * MIN)]


# Maintenance.


def test_maintenance_holds_an_elevators_rules_except_entrapment_and_the_alarm_button() -> None:
    d = Device(Engine(CATALOGUE), "elevator")
    d.tele(0, **{**LIFT_IDLE, "service_mode": "inspection"})
    # Stopped outside the door zone, empty, for a minute: held.
    assert d.tele(S, door="closed", in_door_zone=False, occupied=False) == []
    assert d.tele(MIN, floor=3) == []
    assert d.engine.tick(T0 + 5 * MIN) == []
    # Someone inside now: entrapment is not held.
    d.tele(2 * MIN, occupied=True)
    assert brief(d.tele(2 * MIN + 15 * S, floor=3)) == [("raised", "entrapment", "emergency", 2 * MIN)]
    assert brief(d.event(3 * MIN, "ALARM_BUTTON")) == [("raised", "alarm_button", "emergency", 3 * MIN)]
    # Back to normal service, car empty and still outside the zone: the held rule's duration starts now.
    assert brief(d.tele(4 * MIN, occupied=False, service_mode="normal")) == [
        ("cleared", "entrapment", "emergency", 4 * MIN)
    ]
    assert brief(d.tele(4 * MIN + 15 * S, floor=3)) == [
        ("raised", "stop_outside_door_zone", "major", 4 * MIN)
    ]


def test_entering_maintenance_drops_a_pending_duration() -> None:
    d = Device(Engine(CATALOGUE), "elevator")
    d.tele(0, **LIFT_IDLE)
    d.tele(S, door="closed", in_door_zone=False, occupied=False)  # stop_outside_door_zone pending
    assert brief(d.tele(5 * S, service_mode="inspection")) == []
    assert brief(d.tele(MIN, floor=3)) == []
    assert d.engine.tick(T0 + 10 * MIN) == []
    assert brief(d.tele(11 * MIN, moving=True, door="open")) == []  # door_open_while_moving: held too
    d.tele(12 * MIN, moving=False, door="closed")
    # Out of inspection, the duration starts from the first message in normal service.
    assert brief(d.tele(13 * MIN, service_mode="normal")) == []
    assert brief(d.tele(13 * MIN + 15 * S, floor=3)) == [
        ("raised", "stop_outside_door_zone", "major", 13 * MIN)
    ]


def test_an_active_alarm_clears_normally_in_maintenance() -> None:
    d = Device(Engine(CATALOGUE), "elevator")
    d.tele(0, **LIFT_IDLE)
    assert brief(d.tele(S, moving=True, door="closing")) == [
        ("raised", "door_open_while_moving", "emergency", S)
    ]
    assert d.tele(2 * S, service_mode="inspection") == []
    assert brief(d.tele(3 * S, door="closed")) == [("cleared", "door_open_while_moving", "emergency", 3 * S)]


# Ticks and offline.


def test_tick_fires_a_duration_with_no_further_message() -> None:
    engine = Engine(CATALOGUE)
    d = Device(engine, "elevator")
    d.lag_ms = 700  # messages arrive 0.7 s after they are measured
    d.tele(0, **LIFT_IDLE)
    d.tele(10 * S, door="closed", in_door_zone=False)
    assert engine.tick(T0 + 10 * S + 700 + 15 * S - 1) == []
    assert brief(engine.tick(T0 + 10 * S + 700 + 15 * S)) == [("raised", "entrapment", "emergency", 10 * S)]
    assert engine.tick(T0 + 10 * S + 700 + 20 * S) == []
    assert brief(d.tele(26 * S, floor=3)) == []  # no duplicate on the next message


def test_offline_by_silence_then_cleared_by_a_message() -> None:
    engine = Engine(CATALOGUE)
    lift = Device(engine, "elevator", "elev-1")  # reports every 10 s: offline after 30 s
    pipe = Device(engine, "sprinkler_pipe", "pipe-1")  # every 60 s: after 180 s
    lift.tele(0, **LIFT_IDLE)
    pipe.tele(0, pressure_mpa=0.5)
    assert engine.tick(T0 + 30 * S - 1) == []
    events = engine.tick(T0 + 30 * S)
    assert brief(events) == [("raised", "offline", "major", 30 * S)]
    assert events[0].detail["reason"] == "silent" and events[0].device_id == "elev-1"
    assert engine.tick(T0 + 60 * S) == []  # raised once
    assert brief(engine.tick(T0 + 180 * S)) == [("raised", "offline", "routine", 180 * S)]
    assert brief(lift.tele(200 * S, floor=4)) == [("cleared", "offline", "major", 200 * S)]
    assert brief(pipe.event(201 * S, "UNKNOWN_CODE")) == [("cleared", "offline", "routine", 201 * S)]
    assert engine.active() == []


def test_offline_by_status_then_cleared_by_status_online() -> None:
    engine = Engine(CATALOGUE)
    d = Device(engine, "fire_panel")
    d.tele(0, main_power_ok=True, backup_power_ok=True)
    assert brief(d.status(20 * S, "offline")) == [("raised", "offline", "major", 20 * S)]
    assert d.status(21 * S, "offline") == []
    assert engine.tick(T0 + 10 * MIN) == []
    assert brief(d.status(30 * S, "online")) == [("cleared", "offline", "major", 30 * S)]
    assert d.status(31 * S, "online") == []


def test_a_last_will_stamped_at_connect_time_still_raises_offline() -> None:
    engine = Engine(CATALOGUE)
    d = Device(engine, "water_pump")
    d.tele(50 * S, running=True, fault=False)
    # The will's ts is when the device connected, before its telemetry: offline is dated on arrival.
    assert brief(d.send(Kind.STATUS, 0, {"state": "offline"})) == [("raised", "offline", "routine", 50 * S)]


def test_a_registered_device_that_never_reports_goes_offline() -> None:
    engine = Engine(CATALOGUE)
    engine.register_device(SITE, "fire_water_tank", "tank-1", arrival_ms=T0)  # 300 s interval
    engine.register_device(SITE, "fire_water_tank", "tank-2", interval_s=20, arrival_ms=T0)
    assert engine.tick(T0 + 60 * S - 1) == []
    assert [(e.device_id, e.ts - T0) for e in engine.tick(T0 + 60 * S)] == [("tank-2", 60 * S)]
    assert engine.tick(T0 + 15 * MIN - 1) == []
    events = engine.tick(T0 + 15 * MIN)
    assert [(e.device_id, e.rule, e.severity, e.ts - T0) for e in events] == [
        ("tank-1", "offline", Severity.ROUTINE, 15 * MIN)
    ]
    assert brief(Device(engine, "fire_water_tank", "tank-1").tele(16 * MIN, level_pct=97)) == [
        ("cleared", "offline", "routine", 16 * MIN)
    ]


def test_a_device_in_maintenance_is_not_flagged_offline() -> None:
    engine = Engine(CATALOGUE)
    d = Device(engine, "elevator")
    d.tele(0, **{**LIFT_IDLE, "service_mode": "inspection"})
    assert engine.tick(T0 + 10 * MIN) == []
    assert d.status(11 * MIN, "offline") == []


# Rolling means.


def _air_quality(engine: Engine, metric: str, readings: list[tuple[int, float]]) -> list[AlarmEvent]:
    d = Device(engine, "air_quality")
    events: list[AlarmEvent] = []
    for at, value in readings:
        events += d.tele(at, **{metric: value})
    return events


@pytest.mark.parametrize("rule_id", sorted(MEAN_CASES))
def test_a_spike_does_not_raise_a_one_hour_mean_rule(rule_id: str) -> None:
    metric, limit = MEAN_CASES[rule_id]
    readings = [(n * MIN, limit * 0.6) for n in range(120)]
    readings[90] = (90 * MIN, limit * 10)  # one reading ten times the limit
    assert _air_quality(Engine(CATALOGUE), metric, readings) == []


@pytest.mark.parametrize("rule_id", sorted(MEAN_CASES))
def test_a_sustained_excess_raises_a_one_hour_mean_rule_and_clears(rule_id: str) -> None:
    metric, limit = MEAN_CASES[rule_id]
    severity = str(CATALOGUE.rule(rule_id).severity)
    low, high = limit * 4 // 5, limit * 6 // 5
    d = Device(Engine(CATALOGUE), "air_quality")
    # A reading a minute: an hour at 0.8 x the limit, then 1.2 x the limit. At 89 min the window
    # (29 min, 89 min] holds 30 of each, a mean of exactly the limit, not above; at 90 min it is.
    events = [e for n in range(100) for e in d.tele(n * MIN, **{metric: low if n < 60 else high})]
    assert brief(events) == [("raised", rule_id, severity, 90 * MIN)]
    assert events[0].detail == {f"mean({metric}, 1h)": (29 * low + 31 * high) / 60}
    # Back to 0.8 x the limit: at 129 min the mean is the limit again, no longer above it.
    events = [e for n in range(100, 160) for e in d.tele(n * MIN, **{metric: low})]
    assert brief(events) == [("cleared", rule_id, severity, 129 * MIN)]


def test_a_mean_is_unknown_until_a_whole_window_has_been_watched() -> None:
    d = Device(Engine(CATALOGUE), "air_quality")
    assert d.tele(0, co2_ppm=5000) == []  # one reading is not an hour's mean
    assert d.tele(59 * MIN, co2_ppm=5000) == []
    assert brief(d.tele(60 * MIN, co2_ppm=5000)) == [("raised", "co2_high", "routine", 60 * MIN)]


def test_the_mean_window_moves_on_without_new_readings_of_its_metric() -> None:
    d = Device(Engine(CATALOGUE), "air_quality")
    for n in range(61):
        d.tele(n * MIN, co2_ppm=1500)
    assert d.engine.active() == [(SITE, "d-1", "co2_high")]
    # Report by exception: other metrics arrive, co2 goes unreported; the window still moves on
    # and, empty, gives no mean.
    assert d.tele(100 * MIN, temp_c=24.0) == []
    assert brief(d.tele(121 * MIN, temp_c=24.5)) == [("cleared", "co2_high", "routine", 121 * MIN)]


# Overrides.

OVERRIDDEN = textwrap.dedent(
    """
    version: 1
    rules:
      - id: fire_tank_low
        device_type: fire_water_tank
        when: "level_pct < 80"
        clear_when: "level_pct >= 90"
        for: 10min
        class: major
    overrides:
      - rule: fire_tank_low
        site: site-01
        when: "level_pct < 70"
      - rule: fire_tank_low
        site: site-01
        device_id: tank-2
        when: "level_pct < 50"
        for: 0s
        class: emergency
      - rule: fire_tank_low
        site: site-01
        device_id: tank-3
        enabled: false
    """
)


@pytest.mark.parametrize(
    ("site", "device_id", "level", "expected"),
    [
        ("site-02", "tank-1", 75, [("raised", "fire_tank_low", "major", 0)]),
        ("site-01", "tank-1", 75, []),
        ("site-01", "tank-1", 65, [("raised", "fire_tank_low", "major", 0)]),
        ("site-01", "tank-2", 65, []),
        ("site-01", "tank-2", 45, [("raised", "fire_tank_low", "emergency", 0)]),
        ("site-01", "tank-3", 10, []),
    ],
)
def test_site_and_device_overrides(site: str, device_id: str, level: float, expected: list[Any]) -> None:
    d = Device(Engine(load_rules(OVERRIDDEN)), "fire_water_tank", device_id, site)
    events = d.tele(0, level_pct=level)
    events += d.tele(10 * MIN, level_pct=level)
    assert brief(events) == expected


# Restart.


def _encoded(engine: Engine, size: int = 2, **extra: object) -> dict[str, object]:
    """The snapshot as the service saves it (a head and parts of `size` devices), read back whole."""
    parts = engine.snapshot_parts(size)
    head = json.loads(engine.snapshot_head(parts=len(parts), **extra))
    return {**head, "devices": [device for part in parts for device in json.loads(part)]}


def _restart(engine: Engine, catalogue: Catalogue = CATALOGUE) -> Engine:
    return Engine(catalogue, _encoded(engine))


def test_a_restart_mid_duration_still_raises_at_the_right_device_time() -> None:
    engine = Engine(CATALOGUE)
    Device(engine, "elevator").tele(0, **LIFT_IDLE)
    Device(engine, "elevator").tele(10 * S, door="closed", in_door_zone=False)
    restarted = _restart(engine)
    d = Device(restarted, "elevator")
    assert brief(d.tele(20 * S, floor=3)) == []
    assert brief(d.tele(25 * S, floor=3)) == [("raised", "entrapment", "emergency", 10 * S)]
    # And by tick, on a second restart in the middle of another duration.
    assert brief(d.tele(30 * S, occupied=False, door="open", in_door_zone=True)) == [
        ("cleared", "entrapment", "emergency", 30 * S)
    ]
    d.tele(40 * S, door="closed", in_door_zone=False)
    again = _restart(restarted)
    assert again.tick(T0 + 55 * S - 1) == []
    assert brief(again.tick(T0 + 55 * S)) == [("raised", "stop_outside_door_zone", "major", 40 * S)]


def _mixed_scenario(
    engine: Engine, restart_after: int | None
) -> tuple[Engine, list[tuple[str, str, str, int]]]:
    """Messages to a sprinkler pipe, an air-quality sensor and a silent chiller; optionally a restart."""
    engine.register_device(SITE, "chiller", "chiller-1", interval_s=600, arrival_ms=T0)
    steps: list[tuple[str, str, int, dict[str, Any]]] = [
        ("sprinkler_pipe", "pipe-1", 0, {"pressure_mpa": 0.03})
    ]
    steps += [("sprinkler_pipe", "pipe-1", MIN, {"pressure_mpa": 0.04})]
    steps += [("air_quality", "aq-1", n * MIN, {"co2_ppm": 900, "temp_c": 22.0}) for n in range(50)]
    steps += [("sprinkler_pipe", "pipe-1", 50 * MIN, {"pressure_mpa": 0.07})]  # between the thresholds
    steps += [("air_quality", "aq-1", n * MIN, {"co2_ppm": 1600}) for n in range(50, 80)]
    steps += [("sprinkler_pipe", "pipe-1", 80 * MIN, {"pressure_mpa": 0.2})]
    events: list[AlarmEvent] = []
    for n, (device_type, device_id, at, metrics) in enumerate(steps):
        if n == restart_after:
            engine = _restart(engine)
        events += Device(engine, device_type, device_id).tele(at, **metrics)
        if at == 30 * MIN:
            events += engine.tick(T0 + at)
    return engine, brief(events)


@pytest.mark.parametrize("restart_after", [1, 2, 30, 52, 60])
def test_a_restart_keeps_active_alarms_values_means_and_offline_clocks(restart_after: int) -> None:
    _, straight = _mixed_scenario(Engine(CATALOGUE), None)
    assert straight == [
        ("raised", "sprinkler_pressure_low", "major", 0),
        ("raised", "offline", "routine", 30 * MIN),  # the chiller: 3 x 600 s of silence
        ("raised", "offline", "routine", 4 * MIN),  # the pipe: 3 x 60 s after its last message
        ("cleared", "offline", "routine", 50 * MIN),
        ("raised", "co2_high", "routine", 60 * MIN),  # (49 x 900 + 11 x 1600) / 60 = 1028
        ("cleared", "sprinkler_pressure_low", "major", 80 * MIN),
    ]
    _, restarted = _mixed_scenario(Engine(CATALOGUE), restart_after)
    assert restarted == straight


def test_the_encoded_snapshot_is_the_snapshot_in_parts_with_the_extra_keys() -> None:
    engine, _ = _mixed_scenario(Engine(CATALOGUE), None)
    Device(engine, "elevator").tele(S, door="closed", in_door_zone=False)  # pending
    devices = len(engine.snapshot()["devices"])
    assert devices > 2
    parts = engine.snapshot_parts(2)
    assert [len(json.loads(part)) for part in parts] == [2] * (devices // 2) + [1] * (devices % 2)
    encoded = _encoded(engine, 2, unapplied=[{"rule": "offline"}])
    assert encoded == {**engine.snapshot(), "parts": len(parts), "unapplied": [{"rule": "offline"}]}
    assert Engine(CATALOGUE).snapshot_parts() == []


def test_a_snapshot_survives_json_and_restores_to_the_same_snapshot() -> None:
    engine, _ = _mixed_scenario(Engine(CATALOGUE), None)
    Device(engine, "elevator").tele(0, **LIFT_IDLE)
    Device(engine, "elevator").tele(S, door="closed", in_door_zone=False)  # pending
    before = engine.snapshot()
    restarted = _restart(engine)
    assert restarted.snapshot()["devices"] == before["devices"]
    assert restarted.version > before["version"]
    assert restarted.active() == engine.active()


def test_a_restart_with_a_changed_catalogue_ends_alarms_of_removed_rules() -> None:
    engine = Engine(CATALOGUE)
    d = Device(engine, "fire_water_tank")
    d.tele(0, level_pct=50)
    d.tele(10 * MIN, level_pct=50)
    assert engine.active() == [(SITE, "d-1", "fire_tank_low")]
    other = load_rules("version: 1\nrules: []\n")
    restarted = _restart(engine, other)
    assert restarted.active() == []
    assert brief(restarted.tick(T0 + 10 * MIN)) == [("cleared", "fire_tank_low", "major", 10 * MIN)]


def test_version_moves_with_pending_and_active_state_not_with_every_reading() -> None:
    engine = Engine(CATALOGUE)
    d = Device(engine, "water_tank")
    d.tele(0, level_pct=50)
    v = engine.version
    d.tele(S, level_pct=49)
    assert engine.version == v
    d.tele(2 * S, level_pct=15)  # pending
    assert engine.version > v
    v = engine.version
    d.tele(3 * S, level_pct=14)
    assert engine.version == v
    d.tele(3 * MIN, level_pct=14)  # raised
    assert engine.version > v


# Time.


def test_late_telemetry_does_not_move_device_time_back() -> None:
    engine = Engine(CATALOGUE)
    d = Device(engine, "water_tank")
    d.tele(0, level_pct=50)
    d.tele(MIN, level_pct=15)
    assert d.tele(30 * S, level_pct=60) == []  # late: ignored, the newer reading stands
    assert brief(d.tele(3 * MIN, level_pct=15)) == [("raised", "water_tank_low", "major", MIN)]
    assert d.tele(2 * MIN, level_pct=80) == []  # late: does not clear


def test_a_device_clock_set_back_is_followed_when_its_seq_goes_on() -> None:
    d = Device(Engine(CATALOGUE), "elevator")
    d.seq = 100
    d.tele(60 * MIN, **LIFT_IDLE)  # the device's clock is an hour fast
    d.tele(61 * MIN, door="closed", in_door_zone=False)  # entrapment pending
    # The clock is corrected: older ts, higher seq. The duration starts again on the new clock.
    assert d.tele(MIN + 2 * S, floor=3) == []
    assert d.tele(MIN + 16 * S, floor=3) == []
    assert brief(d.tele(MIN + 17 * S, floor=3)) == [("raised", "entrapment", "emergency", MIN + 2 * S)]
    assert brief(d.tele(MIN + 20 * S, door="open", in_door_zone=True)) == [
        ("cleared", "entrapment", "emergency", MIN + 20 * S)
    ]


def test_a_late_sos_still_raises() -> None:
    d = Device(Engine(CATALOGUE), "patrol_reader")
    d.tele(10 * MIN, battery_v=4.0)
    assert brief(d.event(MIN, "SOS", tag="cp-1", guard="g-1")) == [("raised", "sos", "emergency", MIN)]


def test_a_late_stateful_event_is_ignored() -> None:
    d = Device(Engine(CATALOGUE), "fire_panel")
    d.event(MIN, "FIRE_ALARM", "raised")
    d.event(2 * MIN, "FIRE_ALARM", "cleared")
    assert d.event(90 * S, "FIRE_ALARM", "raised") == []


def test_unknown_values_raise_nothing() -> None:
    d = Device(Engine(CATALOGUE), "elevator")
    assert d.tele(0, floor=3) == []
    assert d.tele(MIN, floor=4, door="closed") == []


def test_a_replay_without_ticks_raises_what_a_live_run_with_ticks_raised() -> None:
    fleet = build_fleet(1, seed=7, fault_rate_per_h=3.0)
    stream = [
        decode(o.topic, o.payload, o.t_ms)
        for o in itertools.islice(messages(fleet, 7, T0, rate=len(fleet) / 10), 40_000)
    ]
    live, replay = Engine(CATALOGUE), Engine(CATALOGUE)
    live_events: list[AlarmEvent] = []
    replay_events: list[AlarmEvent] = []
    next_tick = T0
    for m in stream:
        while next_tick < m.ts:  # a tick every second of wall clock (= device time here)
            live_events += live.tick(next_tick)
            next_tick += S
        live_events += live.process(m, m.ts)
        replay_events += replay.process(m, m.ts)

    def key(e: AlarmEvent) -> tuple[str, str, str, int]:
        return (e.kind, e.device_id, e.rule, e.ts)

    raised = [e for e in replay_events if e.kind == "raised"]
    assert len({e.rule for e in raised}) >= 8, "the stream should exercise many rules"
    assert any(CATALOGUE.rule(e.rule).for_ms for e in raised), "and rules with a duration"
    assert sorted(map(key, live_events)) == sorted(map(key, replay_events))
    assert live.active() == replay.active()


# Components of a fire panel.


@pytest.mark.parametrize("code,rule_id", [("FIRE_ALARM", "fire_alarm"), ("FAULT", "fire_panel_fault")])
def test_each_component_is_tracked_and_the_alarm_clears_with_the_last(code: str, rule_id: str) -> None:
    d = Device(Engine(CATALOGUE), "fire_panel", "fp-1")
    first = d.event(1 * S, code, "raised", zone="3F", component="smoke-0031")
    assert brief(first) == [("raised", rule_id, str(CATALOGUE.rule(rule_id).severity), 1 * S)]
    assert first[0].detail["components"] == ["smoke-0031"]
    second = d.event(2 * S, code, "raised", zone="3F", component="smoke-0032")
    # The same alarm raised again by another component: the ticket hears of it.
    assert [(e.kind, e.ts - T0, e.detail["components"]) for e in second] == [
        ("raised", 2 * S, ["smoke-0031", "smoke-0032"])
    ]
    assert d.event(3 * S, code, "raised", component="smoke-0032") == []  # known already
    assert d.event(4 * S, code, "cleared", component="smoke-0031") == []  # 0032 still in alarm
    assert d.engine.active() == [(SITE, "fp-1", rule_id)]
    cleared = d.event(5 * S, code, "cleared", component="smoke-0032")
    assert [(e.kind, e.ts - T0) for e in cleared] == [("cleared", 5 * S)]
    assert d.engine.active() == []


def test_a_clear_without_a_component_clears_every_component() -> None:
    d = Device(Engine(CATALOGUE), "fire_panel", "fp-1")
    d.event(1 * S, "FIRE_ALARM", "raised", component="smoke-0031")
    d.event(2 * S, "FIRE_ALARM", "raised", component="heat-0007")
    assert brief(d.event(3 * S, "FIRE_ALARM", "cleared")) == [("cleared", "fire_alarm", "emergency", 3 * S)]
    # A fresh alarm afterwards starts a fresh list of components.
    again = d.event(4 * S, "FIRE_ALARM", "raised", component="heat-0007")
    assert again[0].detail["components"] == ["heat-0007"]


def test_components_in_alarm_survive_a_restart() -> None:
    d = Device(Engine(CATALOGUE), "fire_panel", "fp-1")
    d.event(1 * S, "SUPERVISORY", "raised", component="valve-01")
    d.event(2 * S, "SUPERVISORY", "raised", component="valve-02")
    d.engine = _restart(d.engine)
    assert d.event(3 * S, "SUPERVISORY", "cleared", component="valve-01") == []
    assert brief(d.event(4 * S, "SUPERVISORY", "cleared", component="valve-02")) == [
        ("cleared", "supervisory", "major", 4 * S)
    ]


def test_a_snapshot_leaves_out_empty_state_and_a_format_1_snapshot_still_restores() -> None:
    engine, _ = _mixed_scenario(Engine(CATALOGUE), None)
    Device(engine, "elevator").tele(0, **LIFT_IDLE)
    Device(engine, "elevator").tele(S, door="closed", in_door_zone=False)  # pending
    before = engine.snapshot()
    quiet = [d for d in before["devices"] if not d.get("pending") and not d.get("active")]
    assert quiet and all("pending" not in d and "active" not in d and "clearing" not in d for d in quiet)
    # Format 1 wrote every field out for every device, empty or not.
    full: dict[str, Any] = {
        "pending": {},
        "clearing": {},
        "active": {},
        "components": {},
        "means": {},
        "interval_s": None,
    }
    old = {**before, "format": 1, "devices": [{**full, **d} for d in before["devices"]]}
    restarted = Engine(CATALOGUE, json.loads(json.dumps(old)))
    assert restarted.snapshot()["devices"] == before["devices"]
    assert restarted.active() == engine.active()


def test_state_raised_on_one_device_stays_with_it() -> None:
    # Devices without pending, clearing, active or components state share one empty dict.
    engine = Engine(CATALOGUE)
    trapped, other = Device(engine, "elevator", "lift-1"), Device(engine, "elevator", "lift-2")
    for lift in (trapped, other):
        lift.tele(0, **LIFT_IDLE)
    trapped.tele(S, occupied=True, door="closed", in_door_zone=False)  # entrapment pending
    trapped.event(2 * S, "ALARM_BUTTON")
    by_id = {d["device_id"]: d for d in engine.snapshot()["devices"]}
    assert by_id["lift-1"]["pending"] and by_id["lift-1"]["active"]
    assert "pending" not in by_id["lift-2"] and "active" not in by_id["lift-2"]
    assert engine.active() == [(SITE, "lift-1", "alarm_button")]
