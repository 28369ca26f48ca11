"""The device contract: topics and payloads, as contract.md defines them."""

from __future__ import annotations

import json

import pytest

from facility.contract import ContractError, Kind, Message, decode, parse_topic

T = "facility/v1/site-a/elevator/elev-1/telemetry"
NOW = 1_795_749_124_123


def _decode(topic: str, doc: object) -> Message:
    return decode(topic, json.dumps(doc).encode(), NOW)


def test_telemetry_from_the_contract_example() -> None:
    m = _decode(
        T,
        {
            "ts": 1795749124123,
            "seq": 48213,
            "metrics": {
                "speed_mps": 0.0,
                "floor": 12,
                "door": "closed",
                "in_door_zone": False,
                "occupied": True,
            },
        },
    )
    assert m == (
        "site-a",
        "elevator",
        "elev-1",
        Kind.TELEMETRY,
        1795749124123,
        48213,
        {"speed_mps": 0.0, "floor": 12, "door": "closed", "in_door_zone": False, "occupied": True},
        True,
    )


def test_event_and_status_and_patrol_scan() -> None:
    e = _decode(
        "facility/v1/s1/fire_panel/fp-1/event",
        {
            "ts": 5,
            "seq": 1,
            "code": "FIRE_ALARM",
            "state": "raised",
            "detail": {"zone": "3F-lift-lobby", "component": "smoke-0031"},
        },
    )
    assert e.kind is Kind.EVENT and e.body["code"] == "FIRE_ALARM" and e.body["state"] == "raised"
    s = _decode("facility/v1/s1/elevator/e1/status", {"ts": 7, "state": "offline"})
    assert s.body == {"state": "offline"} and s.seq is None
    p = _decode(
        "facility/v1/s1/patrol_reader/r1/event",
        {"ts": 9, "code": "PATROL_SCAN", "detail": {"tag": "cp-b2-garage-03", "guard": "g-0012"}},
    )
    assert p.body == {
        "code": "PATROL_SCAN",
        "state": None,
        "detail": {"tag": "cp-b2-garage-03", "guard": "g-0012"},
    }


def test_ts_absent_is_receive_time_and_rfc3339_is_accepted() -> None:
    absent = _decode(T, {"metrics": {"floor": 1}})
    assert absent.ts == NOW and absent.ts_given is False
    m = _decode(T, {"ts": "2026-11-27T12:00:00.250+08:00", "metrics": {"floor": 1}})
    assert m.ts == 1_795_752_000_250


@pytest.mark.parametrize(
    ("topic", "reason"),
    [
        ("facility/v1/site-a/elevator/elev-1", "topic: expected"),
        ("facility/v2/site-a/elevator/elev-1/telemetry", "topic: expected"),
        ("facility/v1/Site-A/elevator/elev-1/telemetry", "topic: site"),
        ("facility/v1/-site/elevator/elev-1/telemetry", "topic: site"),
        ("facility/v1/" + "s" * 65 + "/elevator/e/telemetry", "topic: site"),
        ("facility/v1/site-a/toaster/t-1/telemetry", "topic: unknown device_type"),
        ("facility/v1/site-a/elevator/Elev 1/telemetry", "topic: device_id"),
        ("facility/v1/site-a/elevator/elev-1/command", "topic: unknown kind"),
    ],
)
def test_bad_topics_name_the_part(topic: str, reason: str) -> None:
    with pytest.raises(ContractError) as err:
        parse_topic(topic)
    assert err.value.reason.startswith(reason)


def test_longest_allowed_names_pass() -> None:
    assert parse_topic("facility/v1/" + "s" * 64 + "/elevator/" + "d" * 64 + "/event").site


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"not json", "payload: not JSON"),
        (b"\xff\xfe", "payload: not"),
        (b"[1, 2]", "payload: must be a JSON object"),
        (b'{"metrics": {"floor": 1}, "ts": true}', "ts:"),
        (b'{"metrics": {"floor": 1}, "ts": -5}', "ts: must lie between"),
        (b'{"metrics": {"floor": 1}, "ts": 9223372036854775808}', "ts: must lie between"),
        (b'{"metrics": {"floor": 1}, "ts": "1969-12-31T23:59:59Z"}', "ts: must lie between"),
        (b'{"metrics": {"floor": 1}, "ts": "2026-W48-5T12:00:00Z"}', "ts: '2026-W48"),
        (b'{"metrics": {"floor": 1}, "ts": "2026-11-27T12:00Z"}', "ts: '2026-11-27T12:00Z' is not RFC"),
        (b'{"metrics": {"floor": 1}, "seq": 9223372036854775808}', "seq:"),
        (b'{"metrics": {"note": "\\ud800"}}', "metrics.note"),
        (b'{"metrics": {"floor": 1e400}}', "metrics.floor"),
        (b'{"metrics": {"floor": ' + b"9" * 400 + b"}}", "metrics.floor"),
        (b'{"metrics": {"seq": 2}}', "metrics.seq: a reserved name"),
        (b'\xef\xbb\xbf{"metrics": {"floor": 1}}', "payload: not JSON"),
        ('{"metrics": {"floor": 1}}'.encode("utf-16"), "payload: not UTF-8"),
        (b'{"metrics": {"floor": 1}, "ts": "2026-11-27T12:00:00"}', "ts: '2026-11-27T12:00:00' is not RFC"),
        (b'{"metrics": {"floor": 1}, "ts": "yesterday"}', "ts:"),
        (b'{"metrics": {"floor": 1}, "seq": -1}', "seq:"),
        (b'{"metrics": {"floor": 1}, "seq": 1.5}', "seq:"),
        (b'{"metrics": {"floor": 1}, "seq": "7"}', "seq:"),
        (b'{"ts": 1}', "metrics: required"),
        (b'{"metrics": {}}', "metrics: must name"),
        (b'{"metrics": {"Floor": 1}}', "metrics: name"),
        (b'{"metrics": {"moving": "yes"}}', "metrics.moving"),
        (b'{"metrics": {"floor": true}}', "metrics.floor"),
        (b'{"metrics": {"door": "ajar"}}', "metrics.door"),
        (b'{"metrics": {"floor": NaN}}', "metrics.floor"),
        (b'{"metrics": {"extra": [1]}}', "metrics.extra"),
    ],
)
def test_bad_telemetry_names_the_field(payload: bytes, reason: str) -> None:
    with pytest.raises(ContractError) as err:
        decode(T, payload, NOW)
    assert err.value.reason.startswith(reason)


def test_oversized_payload_is_refused() -> None:
    big = json.dumps({"metrics": {"floor": 1}, "pad": "x" * 70_000}).encode()
    with pytest.raises(ContractError, match="over the 65536 limit"):
        decode(T, big, NOW)


@pytest.mark.parametrize(
    ("topic", "doc", "reason"),
    [
        ("facility/v1/s/fire_panel/f/event", {"state": "raised"}, "code:"),
        ("facility/v1/s/fire_panel/f/event", {"code": "fire_alarm"}, "code:"),
        ("facility/v1/s/fire_panel/f/event", {"code": "FAULT", "state": "on"}, "state:"),
        ("facility/v1/s/fire_panel/f/event", {"code": "FAULT", "detail": "x"}, "detail:"),
        (
            "facility/v1/s/patrol_reader/r/event",
            {"code": "PATROL_SCAN", "detail": {"tag": "t"}},
            "detail.guard",
        ),
        (
            "facility/v1/s/patrol_reader/r/event",
            {"code": "PATROL_FINDING", "detail": {"tag": "t", "guard": "g"}},
            "detail.text",
        ),
        ("facility/v1/s/elevator/e/status", {"state": "asleep"}, "state:"),
        ("facility/v1/s/fire_panel/f/event", {"code": "FAULT", "detail": {"x": "\ud800"}}, "detail:"),
    ],
)
def test_bad_events_and_status(topic: str, doc: dict[str, object], reason: str) -> None:
    with pytest.raises(ContractError) as err:
        _decode(topic, doc)
    assert err.value.reason.startswith(reason)


def test_unknown_metrics_of_a_known_type_are_kept() -> None:
    """The contract grows by adding: a point we do not know yet is stored, not refused."""
    assert _decode(T, {"metrics": {"car_load_pct": 40.5}}).body == {"car_load_pct": 40.5}
