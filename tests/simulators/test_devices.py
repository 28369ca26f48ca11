"""The device models: contract-valid output, report by exception, determinism, health and faults."""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Callable
from datetime import datetime
from functools import cache
from typing import Any

import pytest

from ground.contract import DEVICE_TYPES, Kind, decode, device_topic
from simulators.devices import MODELS, SITE_FLEET, DeviceModel, build_fleet, local_hour

START_MS = int(datetime.fromisoformat("2026-06-01T00:00:00+08:00").timestamp() * 1000)
DAY_MS = 24 * 3_600_000
STEP_MS = 10_000


class Sample:
    """One report of one device: the merged last-known state plus what it sent."""

    def __init__(self, t_ms: int, state: dict[str, Any], sent: list[tuple[Kind, dict[str, Any]]]):
        self.t_ms = t_ms
        self.state = state
        self.telemetry = [b["metrics"] for k, b in sent if k is Kind.TELEMETRY]
        self.events = [b for k, b in sent if k is Kind.EVENT]


def run(device: DeviceModel, seed: int, ms: int = DAY_MS, step_ms: int = STEP_MS) -> list[Sample]:
    """Report every `step_ms` of device time; check every message against the contract."""
    rng = random.Random(seed)
    state: dict[str, Any] = {}
    samples = []
    seq = 0
    for t in range(START_MS, START_MS + ms, step_ms):
        sent = device.report(t, rng)
        for kind, body in sent:
            assert "ts" not in body and "seq" not in body
            topic = device_topic(device.site, device.device_type, device.device_id, kind)
            payload = json.dumps({"ts": t, "seq": seq, **body}).encode()
            msg = decode(topic, payload, t + 50)
            assert msg.ts == t and msg.kind is kind
            seq += 1
            if kind is Kind.TELEMETRY:
                state.update(body["metrics"])
        samples.append(Sample(t, dict(state), sent))
    return samples


@cache
def day(device_type: str, fault_rate_per_h: float = 0.0, seed: int = 1) -> list[Sample]:
    """A simulated day of one device, reporting every 10 s (half a day when faults are on)."""
    device_id = f"{device_type[:4]}-1"
    model = MODELS[device_type](device_id, "site-01", random.Random(seed), fault_rate_per_h)
    return run(model, seed + 100, DAY_MS // 2 if fault_rate_per_h else DAY_MS)


def held(samples: list[Sample], condition: Any, for_ms: int) -> bool:
    """Whether `condition(state)` stayed true for at least `for_ms` of device time."""
    since = None
    for s in samples:
        if s.state and condition(s.state):
            since = s.t_ms if since is None else since
            if s.t_ms - since >= for_ms:
                return True
        else:
            since = None
    return False


def entrapment(m: dict[str, Any]) -> bool:
    return m["occupied"] and not m["moving"] and m["door"] == "closed" and not m["in_door_zone"]


def entrapment_at_landing(m: dict[str, Any]) -> bool:
    return m["occupied"] and not m["moving"] and m["door"] == "closed" and m["in_door_zone"]


def stop_outside_door_zone(m: dict[str, Any]) -> bool:
    return not m["moving"] and not m["in_door_zone"] and not m["occupied"]


def emergency_light_ok(m: dict[str, Any]) -> bool:
    return m["main_power_ok"] and not m["fault"] and m["last_test_duration_min"] >= 30


# What a healthy device looks like: tighter than the contract's default rules.
HEALTHY: dict[str, Callable[[dict[str, Any]], bool]] = {
    "elevator": lambda m: not entrapment(m) and not stop_outside_door_zone(m),
    "fire_panel": lambda m: m["main_power_ok"] and m["backup_power_ok"],
    "sprinkler_pipe": lambda m: 0.3 <= m["pressure_mpa"] <= 0.8,
    "fire_water_tank": lambda m: m["level_pct"] >= 90,
    "fire_pump": lambda m: m["auto_mode"] and m["power_ok"],
    "lighting_circuit": lambda m: not m["breaker_tripped"] and m["lamp_failures"] == 0,
    "emergency_light": emergency_light_ok,
    "water_pump": lambda m: not m["fault"] and 0.15 <= m["outlet_pressure_mpa"] <= 0.7,
    "water_tank": lambda m: 30 <= m["level_pct"] <= 95,
    "sump_pit": lambda m: m["level_pct"] < 70 and m["pumps_faulted"] == 0,
    "air_quality": lambda m: m["co2_ppm"] <= 1000 and m["pm25_ugm3"] <= 75,
    "garage_co": lambda m: m["co_mgm3"] < 25,
    "chiller": lambda m: not m["tripped"] and 4 <= m["supply_temp_c"] <= 20,
    "patrol_reader": lambda m: 3.55 <= m["battery_v"] <= 4.25,
}


def test_every_contract_type_has_a_model_and_the_site_fleet_covers_them():
    assert set(MODELS) == set(DEVICE_TYPES)
    assert {t for t, _, _ in SITE_FLEET} == set(DEVICE_TYPES)
    fleet = build_fleet(2, seed=3)
    per_site = sum(n for _, _, n in SITE_FLEET)
    assert 15 <= per_site <= 30 and len(fleet) == 2 * per_site
    assert {d.site for d in fleet} == {"site-01", "site-02"}
    assert len({(d.site, d.device_id) for d in fleet}) == len(fleet)
    assert {d.device_id for d in fleet if d.device_type == "elevator"} == {"elev-1", "elev-2"}


@pytest.mark.parametrize("device_type", sorted(DEVICE_TYPES))
def test_a_day_of_reports_is_valid_and_by_exception(device_type):
    samples = day(device_type)
    names = set(DEVICE_TYPES[device_type].metrics)
    first = samples[0].telemetry
    assert len(first) == 1 and set(first[0]) == names
    # Every 10th report is a full snapshot; the others carry only what changed.
    assert all(set(s.telemetry[0]) == names for s in samples[::10])
    later = [s for i, s in enumerate(samples) if i % 10]
    assert any(not s.telemetry or set(s.telemetry[0]) < names for s in later)
    assert all(len(s.telemetry) <= 1 for s in samples)


@pytest.mark.parametrize("device_type", sorted(HEALTHY))
def test_without_faults_a_day_stays_healthy(device_type):
    samples = day(device_type)
    assert all(HEALTHY[device_type](s.state) for s in samples)
    codes = {e["code"] for s in samples for e in s.events}
    assert codes <= {"PATROL_SCAN"}


def test_without_faults_elevators_raise_no_rule():
    for seed in (1, 2):
        samples = day("elevator", 0.0, seed)
        assert not held(samples, entrapment, 15_000)
        assert not held(samples, entrapment_at_landing, 60_000)
        assert not held(samples, stop_outside_door_zone, 15_000)
        assert not any(s.events for s in samples)


def test_without_faults_other_rules_do_not_hold():
    spr = day("sprinkler_pipe")
    assert not held(spr, lambda m: m["pressure_mpa"] < 0.05 or m["pressure_mpa"] > 1.2, 0)
    sump = day("sump_pit")
    assert not held(sump, lambda m: m["level_pct"] >= 80, 0)
    co = day("garage_co")
    assert not held(co, lambda m: m["co_mgm3"] >= 30, 0)


@pytest.mark.parametrize("fault_rate", [0.0, 3.0])
def test_elevator_physics(fault_rate):
    samples = day("elevator", fault_rate)
    runs = [s.state["run_count"] for s in samples]
    assert runs == sorted(runs) and runs[-1] - runs[0] > 100
    for s in samples:
        m = s.state
        assert not (m["moving"] and m["door"] != "closed")
        if not m["moving"]:
            assert m["speed_mps"] == 0
            if m["door"] != "closed":
                assert m["in_door_zone"]
    floors = {s.state["floor"] for s in samples}
    assert len(floors) > 5 and 0 not in floors
    assert any(s.state["moving"] and s.state["speed_mps"] > 1 for s in samples)


def test_elevator_door_cycles_in_order():
    model = MODELS["elevator"]("elev-1", "site-01", random.Random(5))
    samples = run(model, 6, ms=2 * 3_600_000, step_ms=500)
    cycle = ["closed", "opening", "open", "closing"]
    allowed = set(zip(cycle, cycle[1:] + cycle[:1], strict=True))
    doors = [s.state["door"] for s in samples]
    changes = [(a, b) for a, b in itertools.pairwise(doors) if a != b]
    assert len(changes) > 100 and set(changes) == allowed


def test_elevators_carry_passengers_mostly_by_day():
    moving = [s for s in day("elevator") if s.state["moving"]]
    by_day = [s.state["occupied"] for s in moving if 7 <= local_hour(s.t_ms) < 22]
    at_night = [s.state["occupied"] for s in moving if not 7 <= local_hour(s.t_ms) < 22]
    assert len(by_day) > 3 * len(at_night) > 0
    assert sum(by_day) / len(by_day) > 0.5 > sum(at_night) / len(at_night)


def test_faults_occur_and_recover():
    elev = day("elevator", 3.0)
    assert held(elev, entrapment, 15_000) or held(elev, entrapment_at_landing, 60_000)
    assert held(elev, stop_outside_door_zone, 15_000) or held(elev, entrapment, 15_000)
    assert any(e["code"] == "ALARM_BUTTON" for s in elev for e in s.events)
    sump = day("sump_pit", 3.0)
    assert held(sump, lambda m: m["level_pct"] >= 95, 0)
    co = day("garage_co", 3.0)
    assert held(co, lambda m: m["co_mgm3"] >= 100, 0)
    spr = day("sprinkler_pipe", 3.0)
    assert held(spr, lambda m: m["pressure_mpa"] < 0.05, 60_000)
    for device_type in DEVICE_TYPES:
        samples = day(device_type, 3.0)
        healthy = HEALTHY[device_type]
        faulty = [i for i, s in enumerate(samples) if not healthy(s.state)]
        events = [e for s in samples for e in s.events if e["code"] != "PATROL_SCAN"]
        assert faulty or events, device_type
        # ... and they end: the device is healthy again after its first fault.
        assert not faulty or any(healthy(s.state) for s in samples[faulty[0] :]), device_type


def test_fire_panel_events_are_raised_then_cleared():
    events = [e for s in day("fire_panel", 3.0) for e in s.events]
    assert any(e["code"] == "FIRE_ALARM" for e in events)
    open_: dict[tuple[str, str], int] = {}
    for e in events:
        key = (e["code"], json.dumps(e["detail"], sort_keys=True))
        open_[key] = open_.get(key, 0) + (1 if e["state"] == "raised" else -1)
        assert open_[key] in (0, 1)
    alarms = [e for e in events if e["code"] == "FIRE_ALARM"]
    assert all(e["detail"]["zone"] and e["detail"]["component"] for e in alarms)


def test_patrol_reader_scans_checkpoints_every_few_minutes():
    scans = [(s.t_ms, e) for s in day("patrol_reader") for e in s.events]
    assert all(e["code"] == "PATROL_SCAN" and "state" not in e for _, e in scans)
    assert 100 < len(scans) < 400
    assert all(e["detail"]["tag"].startswith("cp-") for _, e in scans)
    assert all(e["detail"]["guard"].startswith("g-") for _, e in scans)
    assert len({e["detail"]["tag"] for _, e in scans}) >= 5
    gaps = [b - a for (a, _), (b, _) in itertools.pairwise(scans)]
    assert min(gaps) >= 60_000
    volts = [s.state["battery_v"] for s in day("patrol_reader")]
    assert max(volts) > 4.1 and min(volts) < 3.7


def stream(seed: int, fault_rate: float = 0.0) -> list[tuple[str, Kind, dict[str, Any]]]:
    """A quarter of an hour of a one-site fleet, polled round-robin at 20 reports/s."""
    fleet = build_fleet(1, seed, fault_rate)
    rng = random.Random(seed)
    out = []
    for i in range(900 * 20):
        device = fleet[i % len(fleet)]
        for kind, body in device.report(START_MS + i * 50, rng):
            out.append((device.device_id, kind, body))
    return out


def test_same_seed_same_output_different_seed_different():
    a = stream(11, 1.0)
    assert a == stream(11, 1.0)
    assert a != stream(12, 1.0)
    assert len({(d, k) for d, k, _ in a}) > 20


def test_time_must_not_go_back():
    model = MODELS["water_tank"]("wt-1", "site-01")
    model.report(START_MS, random.Random(1))
    with pytest.raises(ValueError):
        model.report(START_MS - 1, random.Random(1))
