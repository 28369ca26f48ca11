"""Scenario files: loading and checking them, and the messages a scenario sends (no broker)."""

from __future__ import annotations

import json
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

from ground.contract import DEVICE_TYPES, MAX_TS_MS, Kind, decode
from ground.settings import MqttEndpoint
from ground.severity import Severity
from rules.catalogue import OFFLINE, default_catalogue
from simulators import scenario, scenario_play
from simulators.scenario import Scenario, ScenarioError, load, messages, scenario_paths
from tests.servers import free_port

T0 = 1_795_749_124_000
S = 1000
MIN = 60 * S

GOOD = """\
name: Entrapment between floors at night
description: A passenger is stuck between 7F and 8F and presses the alarm button.
site: demo
start: "2026-11-27T02:10:00+08:00"
duration: 1min
devices:
  - {device_type: elevator, device_id: elev-2, report_every: 20s}
steps:
  - {at: 0s, device: elev-2, telemetry: {floor: 7, moving: false, door: closed, in_door_zone: false,
                                         occupied: true, speed_mps: 0.0, service_mode: normal}}
  - {at: 25s, device: elev-2, event: {code: ALARM_BUTTON}}
  - {at: 40s, device: elev-2, telemetry: {in_door_zone: true, door: open, floor: 8}}
expect:
  tickets:
    - {device_id: elev-2, class: emergency, rules: [entrapment, alarm_button]}
  alarms: [{device_id: elev-2, rule: entrapment, active: false}]
"""


def write(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems_of(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ScenarioError) as caught:
        load(write(tmp_path, text))
    return caught.value.problems


def decoded(s: Scenario, start_ms: int = T0) -> list[Any]:
    # The payloads are checked, not the clock they were made for.
    return [decode(m.topic, m.payload, 0, skew_ms=MAX_TS_MS) for m in messages(s, start_ms)]


# Loading.


def test_a_good_file_loads_whole(tmp_path: Path) -> None:
    s = load(write(tmp_path, GOOD))
    assert s.name == "Entrapment between floors at night"
    assert s.site == "demo"
    assert s.start_ms == 1_795_716_600_000  # 2026-11-26T18:10:00Z
    assert s.duration_ms == MIN
    assert [(d.device_type, d.device_id, d.report_every_ms) for d in s.devices] == [
        ("elevator", "elev-2", 20 * S)
    ]
    assert [(st.at_ms, st.kind) for st in s.steps] == [
        (0, Kind.TELEMETRY),
        (25 * S, Kind.EVENT),
        (40 * S, Kind.TELEMETRY),
    ]
    assert s.steps[1].body == {"code": "ALARM_BUTTON"}
    [ticket] = s.tickets
    assert (ticket.device_id, ticket.severity) == ("elev-2", Severity.EMERGENCY)
    assert ticket.rules == {"entrapment", "alarm_button"}
    assert ticket.occurrences is None
    [alarm] = s.alarms
    assert (alarm.device_id, alarm.rule, alarm.active, alarm.raised, alarm.count) == (
        "elev-2",
        "entrapment",
        False,
        None,
        None,
    )
    assert s.path == tmp_path / "s.yaml"


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("duration: 1min", "duration: 60", "duration: 60 is not a duration"),
        ("duration: 1min", "duration: 1 minute", "duration: '1 minute' is not a duration"),
        ("duration: 1min", "duration: 0s", "duration: must be longer than 0s"),
        ("report_every: 20s", "report_every: often", "devices[0].report_every: 'often' is not a duration"),
        ("device_type: elevator", "device_type: escalator", "devices[0].device_type: unknown device type"),
        (
            "elevator, device_id: elev-2,",
            "elevator, device_id: Elev 2,",
            "devices[0].device_id: 'Elev 2' does not",
        ),
        ("at: 25s, device: elev-2", "at: 25s, device: elev-9", "steps[1].device: unknown device 'elev-9'"),
        ("at: 40s", "at: 2min", "steps[2].at: 2min is after the duration (1min)"),
        ("floor: 7,", "storey: 7,", "steps[0].telemetry.storey: unknown metric for elevator"),
        ("floor: 7,", "floor: seven,", "steps[0].telemetry.floor: 'seven' is not a number"),
        ("moving: false,", "moving: 0,", "steps[0].telemetry.moving: 0 is not true or false"),
        (
            "door: closed,",
            "door: shut,",
            "steps[0].telemetry.door: 'shut' is not one of open/closed/opening/closing",
        ),
        (
            "code: ALARM_BUTTON",
            "code: FIRE_ALARM",
            "steps[1].event.code: 'FIRE_ALARM' is not an event of elevator",
        ),
        ("code: ALARM_BUTTON}", "code: ALARM_BUTTON, state: pressed}", "steps[1].event.state: 'pressed'"),
        ("code: ALARM_BUTTON}", "code: ALARM_BUTTON, when: now}", "steps[1].event.when: unknown key"),
        (
            "event: {code: ALARM_BUTTON}",
            "status: asleep",
            "steps[1].status: 'asleep' is not online or offline",
        ),
        ("event: {code: ALARM_BUTTON}", "evnt: {code: ALARM_BUTTON}", "steps[1].evnt: unknown key"),
        ("event: {code: ALARM_BUTTON}", "", "steps[1]: needs exactly one of telemetry, event, status"),
        ("site: demo", "site: Demo Site", "site: 'Demo Site' does not match"),
        ("site: demo", "sight: demo", "scenario.sight: unknown key"),
        ("site: demo", "", "scenario.site: required"),
        (
            'start: "2026-11-27T02:10:00+08:00"',
            'start: "2026-11-27 02:10"',
            "start: '2026-11-27 02:10' is not",
        ),
        ("report_every: 20s}", "report_every: 20s, every: 5s}", "devices[0].every: unknown key"),
        ("class: emergency", "class: critical", "expect.tickets[0].class: 'critical' is not routine"),
        (
            "{device_id: elev-2, class",
            "{device_id: elev-3, class",
            "expect.tickets[0].device_id: unknown device",
        ),
        (
            "rules: [entrapment, alarm_button]",
            "rules: []",
            "expect.tickets[0].rules: must be a non-empty list",
        ),
        ("rules: [entrapment, alarm_button]", "rules: [Entrapment]", "expect.tickets[0].rules: not rule ids"),
        (
            "rule: entrapment, active: false",
            "rule: sos, active: false",
            "expect.alarms[0]: elev-2/sos is not among",
        ),
        ("active: false}", "active: no way}", "expect.alarms[0].active: 'no way' is not true or false"),
        ("active: false}", "active: false, raised: 0}", "expect.alarms[0].raised: 0 is not a whole number"),
        ("  alarms:", "  alrms:", "expect.alrms: unknown key"),
        ("expect:\n  tickets:", "expect:\n  tix:", "expect.tickets: required"),
    ],
)
def test_a_bad_field_is_named(tmp_path: Path, old: str, new: str, expected: str) -> None:
    assert GOOD.count(old) == 1, old
    problems = problems_of(tmp_path, GOOD.replace(old, new))
    assert any(expected in p for p in problems), problems


def test_every_problem_of_a_file_is_reported_at_once(tmp_path: Path) -> None:
    text = GOOD.replace("floor: 7,", "storey: 7,").replace("device: elev-2, event", "device: elev-9, event")
    text = text.replace("class: emergency", "class: critical")
    problems = problems_of(tmp_path, text)
    assert len(problems) == 3, problems
    with pytest.raises(ScenarioError, match=r"s\.yaml: 3 problems"):
        load(write(tmp_path, text))


def test_a_key_given_twice_is_refused(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, GOOD.replace("site: demo", "site: demo\nsite: other"))
    assert any("key 'site' given twice" in p for p in problems), problems


def test_unquoted_on_is_explained(tmp_path: Path) -> None:
    text = """\
        name: Lights
        site: demo
        duration: 1min
        devices: [{device_type: lighting_circuit, device_id: l-1}]
        steps: [{at: 0s, device: l-1, telemetry: {on: true}}]
        expect: {tickets: []}
    """
    problems = problems_of(tmp_path, text)
    assert any("steps[0].telemetry: metric name True is not a string" in p and "quote" in p for p in problems)
    fixed = load(write(tmp_path, text.replace("{on: true}", "{'on': true}")))
    assert fixed.steps[0].body == {"on": True}


def test_a_patrol_scan_without_its_guard_breaks_the_contract(tmp_path: Path) -> None:
    text = """\
        name: Patrol
        site: demo
        duration: 1min
        devices: [{device_type: patrol_reader, device_id: pr-1}]
        steps: [{at: 0s, device: pr-1, event: {code: PATROL_SCAN, detail: {tag: cp-1}}}]
        expect: {tickets: []}
    """
    assert problems_of(tmp_path, text) == [
        "steps[0]: detail.guard: required for PATROL_SCAN, a non-empty string"
    ]


def test_a_device_declared_twice_and_a_ticket_listed_twice_are_refused(tmp_path: Path) -> None:
    device = "  - {device_type: elevator, device_id: elev-2, report_every: 20s}"
    text = GOOD.replace(device, device + "\n" + device).replace(
        "    - {device_id: elev-2, class: emergency, rules: [entrapment, alarm_button]}",
        "    - {device_id: elev-2, class: emergency, rules: [entrapment]}\n"
        "    - {device_id: elev-2, class: major, rules: [alarm_button]}",
    )
    problems = problems_of(tmp_path, text)
    assert "devices[1].device_id: 'elev-2' is declared twice" in problems
    assert any(p.startswith("expect.tickets[1].device_id: 'elev-2' listed twice") for p in problems), problems


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "the file is empty"),
        ("- a list\n", "scenario: must be a mapping"),
        ("name: [unclosed\n", "not valid YAML"),
    ],
)
def test_a_file_that_is_not_a_scenario_is_refused(tmp_path: Path, text: str, expected: str) -> None:
    problems = problems_of(tmp_path, text)
    assert any(expected in p for p in problems), problems


def test_a_missing_file_is_a_scenario_error(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="cannot read the file"):
        load(tmp_path / "missing.yaml")


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        ('"2026-11-27T02:10:00+08:00"', 1_795_716_600_000),
        ("2026-11-27T02:10:00+08:00", 1_795_716_600_000),  # YAML's own timestamp
        ('"2026-11-26T18:10:00Z"', 1_795_716_600_000),
        ("1795716600000", 1_795_716_600_000),
    ],
)
def test_start_takes_rfc3339_or_epoch_ms(tmp_path: Path, start: str, expected: int) -> None:
    s = load(write(tmp_path, GOOD.replace('"2026-11-27T02:10:00+08:00"', start)))
    assert s.start_ms == expected


def test_start_without_an_offset_or_out_of_range_is_refused_and_no_start_means_now(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, GOOD.replace("+08:00", ""))
    assert any(p.startswith("start: ") and "offset" in p for p in problems), problems
    problems = problems_of(tmp_path, GOOD.replace('"2026-11-27T02:10:00+08:00"', "-1"))
    assert problems == ["start: -1 is not between 1970 and 9999"]
    assert load(write(tmp_path, GOOD.replace('start: "2026-11-27T02:10:00+08:00"\n', ""))).start_ms is None


def test_report_every_defaults_to_the_types_interval_at_most_a_minute(tmp_path: Path) -> None:
    text = """\
        name: Defaults
        site: demo
        duration: 10min
        devices:
          - {device_type: elevator, device_id: e-1}
          - {device_type: fire_water_tank, device_id: t-1}
        expect: {tickets: []}
    """
    s = load(write(tmp_path, text))
    assert DEVICE_TYPES["fire_water_tank"].report_interval_s == 300
    assert [d.report_every_ms for d in s.devices] == [10 * S, MIN]
    assert s.steps == ()


def test_too_many_reports_are_refused(tmp_path: Path) -> None:
    text = GOOD.replace("report_every: 20s", "report_every: 1ms").replace("duration: 1min", "duration: 2min")
    problems = problems_of(tmp_path, text)
    assert any(p.startswith("devices: 120001 reports over the duration") for p in problems), problems


# Messages.


def test_reports_come_every_report_every_and_steps_at_their_time(tmp_path: Path) -> None:
    s = load(write(tmp_path, GOOD))
    sent = decoded(s)
    timeline = [(m.ts - T0, m.kind, m.seq) for m in sent]
    assert timeline == [
        (0, Kind.TELEMETRY, 0),  # the step
        (0, Kind.TELEMETRY, 1),  # the report after it
        (20 * S, Kind.TELEMETRY, 2),
        (25 * S, Kind.EVENT, 3),
        (40 * S, Kind.TELEMETRY, 4),
        (40 * S, Kind.TELEMETRY, 5),
        (60 * S, Kind.TELEMETRY, 6),  # the end is included
    ]
    assert all(m.site == "demo" and m.device_type == "elevator" and m.device_id == "elev-2" for m in sent)
    assert [m.t_ms for m in messages(s, T0)] == [m.ts for m in sent]


def test_a_step_is_sent_as_given_and_reports_carry_the_merged_state(tmp_path: Path) -> None:
    s = load(write(tmp_path, GOOD))
    sent = decoded(s)
    assert sent[4].body == {"in_door_zone": True, "door": "open", "floor": 8}  # the step, by exception
    full = {
        "floor": 8,
        "moving": False,
        "door": "open",
        "in_door_zone": True,
        "occupied": True,
        "speed_mps": 0.0,
        "service_mode": "normal",
    }
    assert sent[5].body == full
    assert sent[6].body == full
    assert sent[2].body == {**full, "floor": 7, "door": "closed", "in_door_zone": False}
    assert sent[3].body == {"code": "ALARM_BUTTON", "state": None, "detail": {}}


def test_payloads_are_compact_json_with_ts_and_seq(tmp_path: Path) -> None:
    s = load(write(tmp_path, GOOD))
    first = messages(s, T0)[3]
    assert first.topic == "facility/v1/demo/elevator/elev-2/event"
    assert json.loads(first.payload) == {"ts": T0 + 25 * S, "seq": 3, "code": "ALARM_BUTTON"}
    assert b" " not in first.payload


def test_seq_counts_per_device_and_steps_keep_file_order_at_one_time(tmp_path: Path) -> None:
    text = """\
        name: Two devices
        site: demo
        duration: 2min
        devices:
          - {device_type: water_pump, device_id: wp-1, telemetry: {running: true, fault: false}}
          - {device_type: water_pump, device_id: wp-2, report_every: 30s}
        steps:
          - {at: 1min, device: wp-2, telemetry: {running: true}}
          - {at: 1min, device: wp-1, telemetry: {fault: true}}
          - {at: 30s, device: wp-1, telemetry: {running: false}}
        expect: {tickets: []}
    """
    s = load(write(tmp_path, text))
    assert [(st.at_ms, st.device_id) for st in s.steps] == [(30 * S, "wp-1"), (MIN, "wp-2"), (MIN, "wp-1")]
    sent = [(m.ts - T0, m.device_id, m.seq, m.body) for m in decoded(s)]
    assert sent == [
        (0, "wp-1", 0, {"running": True, "fault": False}),  # wp-2 has no state yet: no report
        (30 * S, "wp-1", 1, {"running": False}),
        (MIN, "wp-2", 0, {"running": True}),
        (MIN, "wp-1", 2, {"fault": True}),
        (MIN, "wp-1", 3, {"running": False, "fault": True}),
        (MIN, "wp-2", 1, {"running": True}),
        (90 * S, "wp-2", 2, {"running": True}),
        (2 * MIN, "wp-1", 4, {"running": False, "fault": True}),
        (2 * MIN, "wp-2", 3, {"running": True}),
    ]


def test_an_offline_device_stops_reporting_until_it_is_online_again(tmp_path: Path) -> None:
    text = """\
        name: Offline
        site: demo
        duration: 5min
        devices: [{device_type: chiller, device_id: ch-1, telemetry: {running: true}}]
        steps:
          - {at: 1min, device: ch-1, status: offline}
          - {at: 3min, device: ch-1, status: online}
        expect: {tickets: []}
    """
    s = load(write(tmp_path, text))
    sent = [(m.ts - T0, m.kind, m.body) for m in decoded(s)]
    assert sent == [
        (0, Kind.TELEMETRY, {"running": True}),
        (MIN, Kind.STATUS, {"state": "offline"}),
        (3 * MIN, Kind.STATUS, {"state": "online"}),
        (3 * MIN, Kind.TELEMETRY, {"running": True}),
        (4 * MIN, Kind.TELEMETRY, {"running": True}),
        (5 * MIN, Kind.TELEMETRY, {"running": True}),
    ]


def test_messages_are_the_same_for_the_same_start_and_shift_with_it(tmp_path: Path) -> None:
    s = load(write(tmp_path, GOOD))
    assert messages(s, T0) == messages(s, T0)
    later = messages(s, T0 + 5000)
    assert [m.t_ms - 5000 for m in later] == [m.t_ms for m in messages(s, T0)]


# The shipped scenarios.

SHIPPED = scenario_paths()


def test_scenarios_ship_in_the_package_folder() -> None:
    assert len(SHIPPED) >= 25
    assert all(p.parent == Path(scenario.__file__).with_name("scenarios") for p in SHIPPED)


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_a_shipped_scenario_keeps_the_contract(path: Path) -> None:
    s = load(path)
    seqs: dict[str, int] = {}
    last_ts = 0
    for m in decoded(s):
        assert m.seq == seqs.get(m.device_id, -1) + 1
        seqs[m.device_id] = m.seq
        assert m.ts >= last_ts
        last_ts = m.ts
    catalogue = default_catalogue()
    for ticket in s.tickets:
        device_type = s.device(ticket.device_id).device_type
        known = {r.id for r in catalogue.for_type(device_type)} | {OFFLINE}
        assert ticket.rules <= known, (
            f"{ticket.device_id}: {ticket.rules - known} are not rules of {device_type}"
        )


def test_every_default_rule_has_a_scenario() -> None:
    covered = {rule for path in SHIPPED for t in load(path).tickets for rule in t.rules}
    assert {r.id for r in default_catalogue().rules} | {OFFLINE} <= covered


def test_a_healthy_and_a_hovering_scenario_ship() -> None:
    assert any(not load(p).tickets for p in SHIPPED)
    hovering = [load(p) for p in SHIPPED if "hovering" in p.stem]
    assert hovering
    for s in hovering:
        assert [(t.occurrences, len(t.rules)) for t in s.tickets] == [(1, 1)]
        assert [(a.raised, a.count) for a in s.alarms] == [(1, 1)]


# Playing without a broker.


def test_run_refuses_a_negative_speed(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="speed"):
        scenario.run(
            MqttEndpoint("mqtt://127.0.0.1:1"), load(write(tmp_path, GOOD)), threading.Event(), speed=-1
        )


def test_run_says_when_no_broker_answers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scenario_play, "CONNECT_TIMEOUT_S", 0.5)
    endpoint = MqttEndpoint(f"mqtt://127.0.0.1:{free_port()}")
    with pytest.raises(ConnectionError, match="cannot connect"):
        scenario.run(endpoint, load(write(tmp_path, GOOD)), threading.Event())
