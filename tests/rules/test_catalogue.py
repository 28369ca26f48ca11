"""The rules file: the shipped defaults match the contract, bad files are refused with every problem."""

from __future__ import annotations

import textwrap

import pytest

from ground.contract import DEVICE_TYPES
from ground.severity import Severity
from rules.catalogue import (
    OFFLINE,
    Catalogue,
    RulesError,
    check_file,
    default_catalogue,
    default_rules_path,
    load_rules,
)

# The contract's "Default rules" table: rule → (device type, for in seconds, class).
CONTRACT_TABLE = {
    "entrapment": ("elevator", 15, "emergency"),
    "entrapment_at_landing": ("elevator", 60, "emergency"),
    "stop_outside_door_zone": ("elevator", 15, "major"),
    "door_open_while_moving": ("elevator", 0, "emergency"),
    "alarm_button": ("elevator", 0, "emergency"),
    "fire_alarm": ("fire_panel", 0, "emergency"),
    "sprinkler_flow": ("fire_panel", 0, "emergency"),
    "fire_panel_fault": ("fire_panel", 0, "routine"),
    "supervisory": ("fire_panel", 0, "major"),
    "fire_power_lost": ("fire_panel", 60, "major"),
    "sprinkler_pressure_low": ("sprinkler_pipe", 60, "major"),
    "sprinkler_pressure_high": ("sprinkler_pipe", 60, "major"),
    "fire_tank_low": ("fire_water_tank", 600, "major"),
    "fire_pump_manual": ("fire_pump", 600, "major"),
    "breaker_tripped": ("lighting_circuit", 0, "major"),
    "lamp_failure": ("lighting_circuit", 300, "routine"),
    "emergency_light_test_failed": ("emergency_light", 0, "major"),
    "emergency_light_fault": ("emergency_light", 0, "routine"),
    "water_pump_fault": ("water_pump", 0, "routine"),
    "water_tank_low": ("water_tank", 120, "major"),
    "sump_high": ("sump_pit", 60, "major"),
    "sump_flooding": ("sump_pit", 0, "emergency"),
    "co2_high": ("air_quality", 0, "routine"),
    "pm25_high": ("air_quality", 0, "major"),
    "garage_co_high": ("garage_co", 900, "major"),
    "garage_co_danger": ("garage_co", 0, "emergency"),
    "chiller_trip": ("chiller", 0, "major"),
    "sos": ("patrol_reader", 0, "emergency"),
}

MINIMAL = """
version: 1
rules:
  - id: fire_tank_low
    device_type: fire_water_tank
    when: "level_pct < 80"
    clear_when: "level_pct >= 90"
    for: 10min
    class: major
"""


def _load(text: str) -> Catalogue:
    return load_rules(textwrap.dedent(text))


def _problems(text: str) -> list[str]:
    with pytest.raises(RulesError) as exc:
        _load(text)
    return exc.value.problems


def test_the_shipped_file_is_the_contract_table() -> None:
    catalogue = default_catalogue()
    assert {
        r.id: (r.device_type, r.for_ms // 1000, str(r.severity)) for r in catalogue.rules
    } == CONTRACT_TABLE
    assert check_file(default_rules_path()) == []


def test_the_shipped_file_lives_in_the_rules_package() -> None:
    path = default_rules_path()
    assert path.is_file() and path.parent.name == "rules" and (path.parent / "__init__.py").is_file()


def test_the_shipped_hysteresis_and_maintenance() -> None:
    catalogue = default_catalogue()
    clear = {r.id: r.clear_when.source for r in catalogue.rules if r.clear_when is not None}
    assert clear == {
        "sprinkler_pressure_low": "pressure_mpa >= 0.10",
        "fire_tank_low": "level_pct >= 90",
        "water_tank_low": "level_pct >= 30",
    }
    held = {r.id for r in catalogue.for_type("elevator") if not r.held_in_maintenance}
    assert held == {"entrapment", "alarm_button"}
    assert catalogue.maintenance["elevator"].test({"service_mode": "inspection"})


def test_the_shipped_offline_rule() -> None:
    catalogue = default_catalogue()
    classes = {t: catalogue.for_device("s", t, "d").offline for t in DEVICE_TYPES}
    assert {
        t: r.severity for t, r in classes.items() if r is not None and r.severity != Severity.ROUTINE
    } == {
        "fire_panel": Severity.MAJOR,
        "elevator": Severity.MAJOR,
    }
    assert all(r is not None and r.id == OFFLINE for r in classes.values())
    assert catalogue.offline.factor == 3
    assert catalogue.offline.interval_s("elevator") == DEVICE_TYPES["elevator"].report_interval_s


def test_rules_are_indexed_by_device_type() -> None:
    rules = default_catalogue().for_device("site-01", "elevator", "elev-1")
    assert [r.id for r in rules.thresholds] == [
        "entrapment",
        "entrapment_at_landing",
        "stop_outside_door_zone",
        "door_open_while_moving",
    ]
    assert [r.id for r in rules.events["ALARM_BUTTON"]] == ["alarm_button"]
    assert rules.maintenance is not None
    air = default_catalogue().for_device("site-01", "air_quality", "aq-1")
    assert [w.key for w in air.windows] == ["mean(co2_ppm, 1h)", "mean(pm25_ugm3, 1h)"]


OVERRIDES = (
    MINIMAL
    + """
offline:
  class_by_type: {}
overrides:
  - rule: fire_tank_low
    when: "level_pct < 75"
    clear_for: 1min
  - rule: fire_tank_low
    site: site-01
    when: "level_pct < 70"
    for: 20min
  - rule: fire_tank_low
    site: site-01
    device_id: tank-2
    when: "level_pct < 50"
    class: emergency
  - rule: fire_tank_low
    site: site-02
    device_id: tank-9
    enabled: false
  - rule: offline
    site: site-03
    class: emergency
"""
)


@pytest.mark.parametrize(
    ("site", "device_id", "when", "for_s", "clear_for_s", "severity"),
    [
        ("site-09", "tank-1", "level_pct < 75", 600, 60, "major"),  # fleet-wide override
        ("site-01", "tank-1", "level_pct < 70", 1200, 60, "major"),  # the site's
        ("site-01", "tank-2", "level_pct < 50", 1200, 60, "emergency"),  # the device's, over the site's
        ("site-02", "tank-2", "level_pct < 75", 600, 60, "major"),  # same id, another site
    ],
)
def test_overrides_device_beats_site_beats_default(
    site: str, device_id: str, when: str, for_s: int, clear_for_s: int, severity: str
) -> None:
    catalogue = _load(OVERRIDES)
    (rule,) = catalogue.for_device(site, "fire_water_tank", device_id).thresholds
    assert rule.when is not None and rule.when.source == when
    assert rule.clear_when is not None and rule.clear_when.source == "level_pct >= 90"
    assert (rule.for_ms, rule.clear_for_ms, rule.severity) == (for_s * 1000, clear_for_s * 1000, severity)
    assert catalogue.rule("fire_tank_low").when.source == "level_pct < 80"  # type: ignore[union-attr]


def test_overrides_disable_a_rule_and_change_the_offline_class() -> None:
    catalogue = _load(OVERRIDES)
    assert catalogue.for_device("site-02", "fire_water_tank", "tank-9").thresholds == ()
    assert catalogue.for_device("site-02", "fire_water_tank", "tank-9").offline is not None
    assert catalogue.for_device("site-03", "elevator", "e").offline.severity == "emergency"  # type: ignore[union-attr]
    assert catalogue.for_device("site-04", "elevator", "e").offline.severity == "routine"  # type: ignore[union-attr]


def test_device_rules_are_resolved_once_and_shared_without_overrides() -> None:
    catalogue = _load(OVERRIDES)
    assert catalogue.for_device("site-01", "fire_water_tank", "t") is catalogue.for_device(
        "site-01", "fire_water_tank", "t"
    )
    assert catalogue.for_device("site-07", "fire_water_tank", "a") is catalogue.for_device(
        "site-08", "fire_water_tank", "b"
    )


def _rule(**fields: object) -> str:
    """A rules file with one rule: the minimal rule's fields, changed or removed (None) as given."""
    rule: dict[str, object] = {
        "id": "fire_tank_low",
        "device_type": "fire_water_tank",
        "when": "level_pct < 80",
        "for": "10min",
        "class": "major",
    }
    rule.update(fields)
    lines = [
        f"    {k}: {v!r}" if isinstance(v, str) else f"    {k}: {v}" for k, v in rule.items() if v is not None
    ]
    return "version: 1\nrules:\n  - " + "\n".join(lines).lstrip() + "\n"


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        (
            {"when": "level > 80"},
            "rule 'fire_tank_low', field 'when': unknown metric 'level' for fire_water_tank",
        ),
        (
            {"when": "level_pct > 'full'"},
            "rule 'fire_tank_low', field 'when': metric 'level_pct' is a number",
        ),
        ({"clear_when": "level_pct >= "}, "rule 'fire_tank_low', field 'clear_when': "),
        (
            {"device_type": "toaster"},
            "rule 'fire_tank_low', field 'device_type': unknown device type 'toaster'",
        ),
        ({"for": "10"}, "rule 'fire_tank_low', field 'for': '10' is not a duration"),
        ({"for": "8d"}, "rule 'fire_tank_low', field 'for': '8d' is longer than 7 days"),
        ({"for": "-5s"}, "rule 'fire_tank_low', field 'for':"),
        ({"clear_for": "soon"}, "rule 'fire_tank_low', field 'clear_for':"),
        ({"class": "urgent"}, "rule 'fire_tank_low', field 'class': 'urgent' is not a class"),
        ({"class": None}, "rule 'fire_tank_low', field 'class': required"),
        ({"enabled": "yes"}, "rule 'fire_tank_low', field 'enabled': 'yes' is not true or false"),
        ({"colour": "red"}, "rule 'fire_tank_low', field 'colour': unknown key"),
        ({"id": "Fire-Tank"}, "rule 'Fire-Tank', field 'id': required, [a-z][a-z0-9_]*"),
        ({"id": "offline"}, "rule 'offline', field 'id': 'offline' is the built-in rule"),
        ({"id": None}, "rule #1, field 'id': required"),
        ({"when": None}, "rule 'fire_tank_low', field 'when': a rule has either when"),
        ({"event": "FIRE_ALARM"}, "rule 'fire_tank_low', field 'when': a rule has either when"),
        (
            {"when": None, "for": None, "event": "LEAK"},
            "rule 'fire_tank_low', field 'event': unknown event code 'LEAK' for fire_water_tank",
        ),
        (
            {"device_type": "fire_panel", "when": None, "event": "FIRE_ALARM"},
            "rule 'fire_tank_low', field 'for': an event rule raises on the event itself",
        ),
        (
            {
                "device_type": "fire_panel",
                "when": None,
                "for": None,
                "event": "FIRE_ALARM",
                "clear_for": "1s",
            },
            "rule 'fire_tank_low', field 'clear_for': not for an event rule",
        ),
    ],
)
def test_rule_problems_name_rule_and_field(fields: dict[str, object], problem: str) -> None:
    problems = _problems(_rule(**fields))
    assert len(problems) == 1, problems
    assert problems[0].startswith(problem), problems


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            _rule(device_type="fire_panel", when=None, event=["FIRE_ALARM"], **{"for": None}),
            "rule 'fire_tank_low', field 'event': unknown event code ['FIRE_ALARM'] for fire_panel",
        ),
        (_rule(device_type=["elevator"]), "rule 'fire_tank_low', field 'device_type': unknown device type"),
        (
            MINIMAL + "overrides:\n  - {rule: fire_tank_low, site: [site-01], enabled: false}\n",
            "override #1 (rule 'fire_tank_low'), field 'site': ['site-01'] is not a valid site",
        ),
        (
            MINIMAL + "overrides:\n  - {rule: [fire_tank_low], enabled: false}\n",
            "override #1 (rule ['fire_tank_low']), field 'rule': no rule ['fire_tank_low'] to override",
        ),
    ],
)
def test_a_list_where_a_name_belongs_is_a_problem_not_a_crash(text: str, problem: str) -> None:
    problems = _problems(text)
    assert len(problems) == 1, problems
    assert problems[0].startswith(problem), problems


@pytest.mark.parametrize(
    ("override", "problem"),
    [
        (
            "rule: fire_tank_hi\n    when: 'level_pct < 1'",
            "override #1 (rule 'fire_tank_hi'), field 'rule': no rule",
        ),
        (
            "rule: fire_tank_low\n    device_id: tank-1\n    when: 'level_pct < 1'",
            "override #1 (rule 'fire_tank_low'), field 'site': required with device_id",
        ),
        (
            "rule: fire_tank_low\n    site: site-01\n    when: 'level < 1'",
            "override #1 (rule 'fire_tank_low'), field 'when': unknown metric 'level'",
        ),
        (
            "rule: fire_tank_low\n    site: Site 1\n    enabled: false",
            "field 'site': 'Site 1' is not a valid site",
        ),
        ("rule: fire_tank_low\n    site: site-01", "field 'rule': an override changes at least one of"),
        ("rule: fire_tank_low\n    colour: red\n    enabled: false", "field 'colour': unknown key"),
        ("rule: fire_tank_low\n    for: 1 minute", "field 'for': '1 minute' is not a duration"),
        (
            "rule: offline\n    for: 1min",
            "override #1 (rule 'offline'), field 'for': not for the offline rule",
        ),
    ],
)
def test_override_problems_name_override_and_field(override: str, problem: str) -> None:
    problems = _problems(MINIMAL + "overrides:\n  - " + override + "\n")
    assert len(problems) == 1, problems
    assert problem in problems[0], problems


def test_every_problem_of_the_file_is_reported_together() -> None:
    text = """
        version: 1
        colour: red
        maintenance:
          lift: "service_mode == 'inspection'"
        offline:
          factor: 0
        rules:
          - id: entrapment
            device_type: elevator
            when: "occupied and not moving and speed == 0"
            for: 15s
            class: emergency
          - id: entrapment
            device_type: elevator
            event: ALARM_BUTTON
            class: urgent
          - id: sump_high
            device_type: sump_pit
            when: "level_pct >= 80"
            for: 1 minute
            class: major
        overrides:
          - rule: sump_hi
            enabled: false
          - rule: sump_high
            when: "level_pct > 'x'"
    """
    problems = _problems(text)
    assert problems == [
        "field 'colour': unknown key (allowed: version, maintenance, offline, rules, overrides)",
        "maintenance, field 'lift': unknown device type 'lift'",
        "offline, field 'factor': 0 is not a number > 0 and ≤ 100",
        "rule 'entrapment', field 'when': unknown metric 'speed' for elevator",
        "rule 'entrapment' (#2), field 'id': duplicate id (rule #1 has it too)",
        "rule 'entrapment' (#2), field 'class': 'urgent' is not a class (routine, major or emergency)",
        "rule 'sump_high', field 'for': '1 minute' is not a duration: a number and one of ms, s, min, h, d",
        "override #1 (rule 'sump_hi'), field 'rule': no rule 'sump_hi' to override",
        "override #2 (rule 'sump_high'), field 'when': "
        "metric 'level_pct' is a number, compared with 'x' (a string)",
    ]
    with pytest.raises(RulesError, match="9 problems"):
        _load(text)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("rules: []", "field 'version': None: this program reads version 1"),
        ("version: 1", "field 'rules': required"),
        ("version: 1\nrules: []\nrules: []", "key 'rules' given twice"),
        ("version: 1\nrules: [\n", "not valid YAML"),
        ("- just a list", "the rules file is a mapping"),
        ("", "the rules file is a mapping"),
    ],
)
def test_file_level_problems(text: str, problem: str) -> None:
    problems = _problems(text)
    assert any(problem in p for p in problems), problems


def test_check_file_reports_an_unreadable_file() -> None:
    (problem,) = check_file(default_rules_path().with_name("no-such-rules.yaml"))
    assert problem.startswith("cannot read")


def test_load_rules_takes_a_path_or_the_text() -> None:
    assert len(load_rules(default_rules_path()).rules) == len(CONTRACT_TABLE)
    assert len(load_rules(str(default_rules_path())).rules) == len(CONTRACT_TABLE)
    assert [r.id for r in _load(MINIMAL).rules] == ["fire_tank_low"]


def test_severity_is_ordered_by_rank() -> None:
    assert Severity.ROUTINE < Severity.MAJOR < Severity.EMERGENCY
    assert Severity.EMERGENCY >= Severity.MAJOR > Severity.ROUTINE
    assert max([Severity.MAJOR, Severity.EMERGENCY, Severity.ROUTINE]) is Severity.EMERGENCY
    assert sorted(Severity) == [Severity.ROUTINE, Severity.MAJOR, Severity.EMERGENCY]
    assert Severity("major") is Severity.MAJOR and Severity.MAJOR.value == "major"


@pytest.mark.parametrize(
    ("severity", "due_s", "label"),
    [(Severity.ROUTINE, 86_400, "一般"), (Severity.MAJOR, 1800, "重大"), (Severity.EMERGENCY, 300, "緊急")],
)
def test_severity_response_due_and_label(severity: Severity, due_s: int, label: str) -> None:
    assert severity.response_due_s == due_s
    assert severity.label_zh == label
