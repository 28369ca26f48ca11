"""Line protocol: what we write for each kind of message, and reading it back."""

from __future__ import annotations

from collector.lineprotocol import format_message, parse_line
from ground.contract import Kind, Message


def test_telemetry_line_writes_numbers_as_floats_and_seq_as_integer() -> None:
    m = Message(
        "s1",
        "elevator",
        "e-1",
        Kind.TELEMETRY,
        1000,
        7,
        {"floor": 12, "moving": False, "door": "closed", "speed_mps": 1.5},
    )
    line = format_message(m)
    assert (
        line
        == 'elevator,site=s1,device_id=e-1 floor=12.0,moving=false,door="closed",speed_mps=1.5,seq=7i 1000'
    )
    p = parse_line(line)
    assert p.measurement == "elevator" and p.tags == {"site": "s1", "device_id": "e-1"}
    assert p.fields == {
        "floor": 12.0,
        "moving": False,
        "door": "closed",
        "speed_mps": 1.5,
        "seq": 7,
    }
    assert p.time == 1000


def test_event_line_keeps_detail_as_json_text_even_with_quotes_and_spaces() -> None:
    detail = {"zone": '3F "lift" lobby', "path": "a\\b", "n": 3}
    m = Message(
        "s1",
        "fire_panel",
        "fp",
        Kind.EVENT,
        5,
        None,
        {"code": "FIRE_ALARM", "state": "raised", "detail": detail},
    )
    p = parse_line(format_message(m))
    assert p.measurement == "events"
    assert p.tags == {
        "site": "s1",
        "device_id": "fp",
        "device_type": "fire_panel",
        "code": "FIRE_ALARM",
    }
    assert p.fields["state"] == "raised"
    import json

    assert json.loads(p.fields["detail"]) == detail


def test_instant_event_has_no_state_and_status_line() -> None:
    scan = Message(
        "s1",
        "patrol_reader",
        "r1",
        Kind.EVENT,
        5,
        3,
        {"code": "PATROL_SCAN", "state": None, "detail": {"tag": "cp-1", "guard": "g-1"}},
    )
    p = parse_line(format_message(scan))
    assert "state" not in p.fields and p.fields["seq"] == 3
    status = Message("s1", "elevator", "e1", Kind.STATUS, 9, None, {"state": "offline"})
    assert format_message(status) == 'status,site=s1,device_id=e1,device_type=elevator state="offline" 9'


def test_parse_handles_escaped_tags_and_integer_suffixes() -> None:
    p = parse_line(r'm\ x,tag\,k=v\ 1\=2 a=1i,b="x y",c=t 12')
    assert p.measurement == "m x" and p.tags == {"tag,k": "v 1=2"}
    assert p.fields == {"a": 1, "b": "x y", "c": True} and p.time == 12
