"""Rule conditions: what compiles, what it evaluates to, and what is refused with which message."""

from __future__ import annotations

from typing import Any

import pytest

from rules.conditions import (
    ConditionError,
    Window,
    compile_condition,
    format_duration,
    mean_key,
    parse_duration,
)

LIFT = {
    "floor": 3,
    "moving": False,
    "speed_mps": 0.0,
    "door": "closed",
    "in_door_zone": False,
    "occupied": True,
    "service_mode": "normal",
}


@pytest.mark.parametrize(
    ("device_type", "source", "values", "expected"),
    [
        ("elevator", "occupied and not moving and door == 'closed' and not in_door_zone", LIFT, True),
        ("elevator", "occupied and not moving and door == 'closed' and in_door_zone", LIFT, False),
        ("elevator", "moving or door != 'closed'", LIFT, False),
        ("elevator", "moving or door != 'closed'", {**LIFT, "door": "opening"}, True),
        ("elevator", "moving == false and occupied == True", LIFT, True),
        ("elevator", "not (moving or not occupied)", LIFT, True),
        ("elevator", "floor >= 3 and floor < 4 and floor != -1", LIFT, True),
        ("elevator", "-2 < floor <= 3", LIFT, True),
        ("elevator", "-2 < floor <= 2", LIFT, False),
        ("elevator", "service_mode == 'inspection'", LIFT, False),
        ("sprinkler_pipe", "pressure_mpa < 0.05", {"pressure_mpa": 0.049}, True),
        ("sprinkler_pipe", "pressure_mpa < 0.05", {"pressure_mpa": 0.05}, False),
        ("sprinkler_pipe", "0.05 > pressure_mpa", {"pressure_mpa": 0.01}, True),
        ("chiller", "supply_temp_c > return_temp_c", {"supply_temp_c": 12, "return_temp_c": 7}, True),
        ("chiller", "tripped", {"tripped": True}, True),
        ("chiller", "true", {}, True),
        ("chiller", "False or tripped", {"tripped": False}, False),
        ("air_quality", "mean(co2_ppm, '1h') > 1000", {mean_key("co2_ppm", 3_600_000): 1001.0}, True),
    ],
)
def test_conditions_evaluate(device_type: str, source: str, values: dict[str, Any], expected: bool) -> None:
    assert compile_condition(source, device_type).test(values) is expected


@pytest.mark.parametrize(
    ("source", "values", "expected"),
    [
        # A value not yet known makes a comparison unknown, and an unknown condition does not hold...
        ("floor > 2", {}, False),
        ("not (floor > 2)", {}, False),
        ("not moving", {"floor": 1}, False),
        ("occupied and not moving", {"occupied": True}, False),
        # ...unless the known part decides it.
        ("occupied and not moving", {"occupied": False}, False),
        ("occupied or moving", {"occupied": True}, True),
        ("not (occupied and moving)", {"occupied": False}, True),
        ("floor > 2 or moving", {"moving": True}, True),
    ],
)
def test_unknown_values_make_comparisons_false(source: str, values: dict[str, Any], expected: bool) -> None:
    assert compile_condition(source, "elevator").test(values) is expected


def test_condition_records_what_it_reads_and_its_windows() -> None:
    c = compile_condition("mean(co2_ppm, '60min') > 1000 and co2_ppm > 800 and temp_c < 30", "air_quality")
    key = mean_key("co2_ppm", 3_600_000)
    assert key == "mean(co2_ppm, 1h)"
    assert c.reads == (key, "co2_ppm", "temp_c")
    assert c.windows == (Window(key, "co2_ppm", 3_600_000),)
    assert c.source == "mean(co2_ppm, '60min') > 1000 and co2_ppm > 800 and temp_c < 30"


@pytest.mark.parametrize(
    ("device_type", "source", "message"),
    [
        ("elevator", "speed > 1", "unknown metric 'speed' for elevator"),
        ("elevator", "mean(speed, '1h') > 1", "unknown metric 'speed' for elevator"),
        ("elevator", "moving == 1", "metric 'moving' is a boolean, compared with 1"),
        ("elevator", "moving == 'yes'", "metric 'moving' is a boolean"),
        ("elevator", "moving < true", "metric 'moving' is a boolean: only == and != compare it"),
        ("elevator", "door == 'shut'", "metric 'door' is one of open/closed/opening/closing, never 'shut'"),
        ("elevator", "door == 1", "metric 'door' is one of open/closed/opening/closing, compared with 1"),
        ("elevator", "door > 'closed'", "metric 'door'"),
        ("elevator", "door == service_mode", "metric 'door'"),
        ("elevator", "floor == 'ground'", "metric 'floor' is a number, compared with 'ground'"),
        ("elevator", "floor == true", "metric 'floor' is a number"),
        ("elevator", "floor", "metric 'floor' is a number, not a boolean"),
        ("elevator", "floor + 1 > 2", "'floor + 1' is not allowed"),
        ("elevator", "floor in (1, 2)", "not allowed"),
        ("elevator", "floor is 1", "operator 'is' is not allowed"),
        ("elevator", "1 < 2", "compares two constants"),
        ("elevator", "floor.real > 1", "'floor.real' is not allowed"),
        ("elevator", "__import__('os').system('true')", "mean(metric, 'window') is the only function"),
        ("elevator", "len(floor) > 1", "mean(metric, 'window') is the only function"),
        ("elevator", "lambda: 1", "is not a condition"),
        ("elevator", "moving and", "is not a valid expression"),
        ("elevator", "", "non-empty"),
        ("elevator", "mean(door, '1h') > 1", "metric 'door' is one of"),
        ("air_quality", "mean(co2_ppm, 3600) > 1", "the window is a quoted duration"),
        ("air_quality", "mean(co2_ppm, '0s') > 1", "the window must be longer than 0"),
        ("air_quality", "mean(co2_ppm, '8d') > 1", "longer than 7 days"),
        ("air_quality", "mean(co2_ppm) > 1", "write mean(metric, 'window')"),
        ("air_quality", "mean(co2_ppm, '1h')", "is not a condition"),
        ("air_quality", "co2_ppm > 1e999j", "not allowed"),
        ("toaster", "heat > 1", "unknown device type 'toaster'"),
    ],
)
def test_bad_conditions_are_refused_naming_the_part(device_type: str, source: str, message: str) -> None:
    with pytest.raises(ConditionError) as exc:
        compile_condition(source, device_type)
    assert message in str(exc.value)


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("0s", 0),
        ("15s", 15_000),
        ("60s", 60_000),
        ("10min", 600_000),
        ("2h", 7_200_000),
        ("1h", 3_600_000),
        ("1d", 86_400_000),
        ("500ms", 500),
        ("1.5s", 1500),
        ("1 min", 60_000),
        ("7d", 604_800_000),
    ],
)
def test_durations(text: str, ms: int) -> None:
    assert parse_duration(text) == ms


@pytest.mark.parametrize("text", ["15", "15m", "-1s", "8d", "s", "1.0001ms", "15 seconds", ""])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ConditionError):
        parse_duration(text)


@pytest.mark.parametrize("value", [15, 1.5, None, True])
def test_a_duration_needs_a_unit(value: object) -> None:
    with pytest.raises(ConditionError, match="with a unit"):
        parse_duration(value)


@pytest.mark.parametrize(
    ("ms", "text"), [(0, "0s"), (500, "500ms"), (15_000, "15s"), (600_000, "10min"), (3_600_000, "1h")]
)
def test_format_duration(ms: int, text: str) -> None:
    assert format_duration(ms) == text
    assert parse_duration(text) == ms
