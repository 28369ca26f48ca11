"""The shared checks of data files: places named as each file words them, every problem kept, durations."""

from __future__ import annotations

import re

import pytest

from ground.contract import DEVICE_TYPES
from ground.datafiles import (
    Checker,
    DurationError,
    Place,
    ProblemsError,
    alternatives,
    format_duration,
    parse_duration,
    read_yaml,
)
from ground.severity import Severity

STEPS = Place(("steps",))


def field_of(at: Place) -> str:
    """A place worded as the rules file words it."""
    return f"{at.item}, field {at.field!r}" if at.item else f"field {at.field!r}"


def test_a_place_is_a_dotted_path_with_list_items() -> None:
    assert str(STEPS[2] / "telemetry" / "floor") == "steps[2].telemetry.floor"
    assert str(Place() / "site") == "site"
    assert str(Place(("expect",)) / "tickets" / 0) == "expect.tickets.0"  # a key, not an item
    assert str((Place(("expect",)) / "tickets")[0]) == "expect.tickets[0]"


def test_a_named_item_keeps_its_path_and_names_its_fields_below_it() -> None:
    rule = (Place() / "rules")[3].named("rule 'entrapment' (#4)")
    at = rule / "class_by_type" / "elevator"
    assert str(at) == "rules[3].class_by_type.elevator"
    assert (at.item, at.field) == ("rule 'entrapment' (#4)", "class_by_type.elevator")
    assert Place().field == ""


def test_every_problem_is_kept_in_order_each_with_its_place() -> None:
    check = Checker()
    check.add(STEPS[0] / "at", "first")
    check.add(STEPS[1], "second")
    assert check.problems == ["steps[0].at: first", "steps[1]: second"]
    worded = Checker(field_of)
    worded.add((Place() / "rules")[0].named("rule 'x'") / "for", "late")
    worded.add(Place() / "colour", "odd")
    assert worded.problems == ["rule 'x', field 'for': late", "field 'colour': odd"]


def test_unknown_and_required_keys() -> None:
    check = Checker()
    assert not check.mapping(STEPS[0], {"at": "1s", "evnt": {}}, ("at", "device", "event"), ("at", "device"))
    assert check.problems == [
        "steps[0].evnt: unknown key (allowed: at, device, event)",
        "steps[0].device: required",
    ]
    assert check.mapping(STEPS[1], {"at": "1s"}, ("at",), ("at",))
    assert not check.mapping(STEPS[2], [], ("at",))
    assert check.problems[-1] == "steps[2]: must be a mapping"


@pytest.mark.parametrize(
    ("value", "positive", "expected", "problem"),
    [
        ("15s", False, 15_000, None),
        ("10min", False, 600_000, None),
        ("0s", False, 0, None),
        ("0s", True, None, "d: must be longer than 0s"),
        ("10", False, None, "d: '10' is not a duration: a number and one of ms, s, min, h, d"),
        (15, False, None, "d: 15 is not a duration: write it with a unit, like '15s' or '10min'"),
        ("8d", False, None, "d: '8d' is longer than 7 days"),
    ],
)
def test_durations(value: object, positive: bool, expected: int | None, problem: str | None) -> None:
    check = Checker()
    assert check.duration(Place() / "d", value, positive=positive) == expected
    assert check.problems == ([problem] if problem else [])


def test_durations_read_and_write() -> None:
    assert parse_duration("1.5s") == 1500
    assert format_duration(90_000) == "90s"
    assert format_duration(3_600_000) == "1h"
    with pytest.raises(DurationError, match="whole number of milliseconds"):
        parse_duration("0.5ms")


def test_choices_flags_and_classes() -> None:
    check = Checker()
    at = Place() / "v"
    assert check.flag(at, True) is True
    assert check.flag(at, "yes") is None
    assert check.choice(at, "online", ("online", "offline")) == "online"
    assert check.choice(at, "asleep", ("online", "offline")) is None
    assert check.choice(at, 3, ("raised", "cleared"), hint=" (omit it)") is None
    assert check.severity(at, "major") is Severity.MAJOR
    assert check.severity(at, "urgent", "a class") is None
    assert check.severity(at, ["major"]) is None
    assert check.problems == [
        "v: 'yes' is not true or false",
        "v: 'asleep' is not online or offline",
        "v: 3 is not raised or cleared (omit it)",
        "v: 'urgent' is not a class (routine, major or emergency)",
        "v: ['major'] is not routine, major or emergency",
    ]
    assert alternatives(["a"]) == "a"
    assert alternatives(["a", "b", "c"]) == "a, b or c"


def test_ids_and_the_contracts_names() -> None:
    check = Checker()
    at = Place() / "v"
    pattern = re.compile(r"[a-z]+")
    assert check.matching(at, "abc", pattern) == "abc"
    assert check.matching(at, "Abc", pattern) is None
    assert check.matching(at, None, pattern, "required, {pattern}; got {value!r}") is None
    assert check.device_type(at, "elevator") == "elevator"
    assert check.device_type(at, "lift") is None
    assert check.device_type(at, ["lift"], "{value!r}: not one of {known}") is None
    assert check.event_code(at, "ALARM_BUTTON", "elevator") == "ALARM_BUTTON"
    assert (
        check.event_code(at, "FIRE_ALARM", "elevator", "{value!r} is not an event of {device_type}") is None
    )
    assert check.event_code(at, {"code": 1}, "fire_water_tank") is None
    assert check.problems[:4] == [
        "v: 'Abc' does not match [a-z]+",
        "v: required, [a-z]+; got None",
        "v: unknown device type 'lift'",
        "v: ['lift']: not one of " + ", ".join(sorted(DEVICE_TYPES)),
    ]
    assert check.problems[4:] == [
        "v: 'FIRE_ALARM' is not an event of elevator",
        "v: unknown event code {'code': 1} for fire_water_tank (known: none)",  # refused, not a crash
    ]


def test_yaml_refuses_a_key_given_twice_and_names_the_source() -> None:
    assert read_yaml("a: 1\nb: [1, 2]\n", "f.yaml") == {"a": 1, "b": [1, 2]}
    with pytest.raises(ProblemsError) as caught:
        read_yaml("a: 1\na: 2\n", "f.yaml")
    [problem] = caught.value.problems
    assert problem.startswith("not valid YAML") and "key 'a' given twice" in problem
    assert str(caught.value).startswith("f.yaml: 1 problem:\n  - not valid YAML")

    class FileError(ProblemsError):
        pass

    with pytest.raises(FileError, match="2 problems") as many:
        raise FileError(["one", "two"], "g.yaml")
    assert many.value.source == "g.yaml"
    with pytest.raises(FileError):
        read_yaml("[unclosed\n", "g.yaml", FileError)
