"""The device contract: topics and payloads, as contract.md defines them."""

from __future__ import annotations

import json

import pytest

from ground.contract import SUBSCRIPTIONS, ContractError, Kind, Message, decode, parse_topic, subscriptions

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
    rfc3339 = json.dumps({"ts": "2026-11-27T12:00:00.250+08:00", "metrics": {"floor": 1}}).encode()
    m = decode(T, rfc3339, 1_795_752_000_250)
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


def test_a_ts_ahead_of_the_receive_time_by_more_than_the_skew_is_refused() -> None:
    """Ten years ahead would hide every later true reading of the device: refused with the reason."""
    ahead = {"ts": NOW + 10 * 365 * 86_400_000, "seq": 1, "metrics": {"floor": 1}}
    with pytest.raises(ContractError) as err:
        _decode(T, ahead)
    assert err.value.reason.startswith("ts:") and "ahead of the receive time" in err.value.reason
    within = {"ts": NOW + 299_000, "metrics": {"floor": 1}}
    assert _decode(T, within).ts == NOW + 299_000
    with pytest.raises(ContractError, match="ahead"):
        decode(T, json.dumps(within).encode(), NOW, skew_ms=60_000)
    assert decode(T, json.dumps(within).encode(), NOW, skew_ms=300_000).ts == NOW + 299_000


def test_values_the_databases_refuse_are_normalised_in_an_event_detail() -> None:
    """NaN and Infinity become null and NUL characters go: a fire alarm is never refused for its detail."""
    payload = (
        b'{"code": "FIRE_ALARM", "state": "raised", "detail": {"zone": "3F\\u0000lobby",'
        b' "temp_c": NaN, "rise": [Infinity, -Infinity, 1.5], "n\\u0000ote": {"x": "a\\u0000"}}}'
    )
    m = decode("facility/v1/s/fire_panel/f/event", payload, NOW)
    expected = {"zone": "3Flobby", "temp_c": None, "rise": [None, None, 1.5], "note": {"x": "a"}}
    assert m.body["detail"] == expected
    assert json.loads(json.dumps(m.body, allow_nan=False)) == m.body


def test_a_patrol_finding_with_a_nul_in_its_text_is_kept_without_it() -> None:
    doc = {"code": "PATROL_FINDING", "detail": {"tag": "cp-1", "guard": "g-1", "text": "lamp\u0000 out"}}
    m = _decode("facility/v1/s/patrol_reader/r/event", doc)
    assert m.body["detail"]["text"] == "lamp out"
    only_nul = {"code": "PATROL_FINDING", "detail": {"tag": "cp-1", "guard": "g-1", "text": "\u0000"}}
    with pytest.raises(ContractError, match=r"detail\.text"):
        _decode("facility/v1/s/patrol_reader/r/event", only_nul)


def test_a_nul_in_a_string_metric_is_refused() -> None:
    with pytest.raises(ContractError, match=r"metrics\.mode"):
        _decode(T, {"metrics": {"mode": "a\u0000b"}})


def test_detail_depth_and_size_are_bounded() -> None:
    deep: dict[str, object] = {}
    node = deep
    for _ in range(260):
        node["n"] = {}
        node = node["n"]  # type: ignore[assignment]
    with pytest.raises(ContractError, match="detail: nested deeper than 8"):
        _decode("facility/v1/s/fire_panel/f/event", {"code": "FAULT", "state": "raised", "detail": deep})
    big = {"code": "FAULT", "state": "raised", "detail": {"text": "x" * 9000}}
    with pytest.raises(ContractError, match=r"detail: .* bytes, over the 8192 limit"):
        _decode("facility/v1/s/fire_panel/f/event", big)
    ok = {"code": "FAULT", "state": "raised", "detail": {"a": {"b": {"c": [1, 2, {"d": "e"}]}}}}
    assert _decode("facility/v1/s/fire_panel/f/event", ok).body["detail"] == ok["detail"]


def test_a_payload_nested_past_the_parser_is_refused_with_a_reason() -> None:
    with pytest.raises(ContractError, match="nested too deeply"):
        decode("facility/v1/s/fire_panel/f/event", b"[" * 30_000 + b"]" * 30_000, NOW)


def test_subscriptions_for_every_site_or_a_worker_s_sites() -> None:
    assert subscriptions() == (("facility/#",), SUBSCRIPTIONS)
    wide, devices = subscriptions({"s02", "s01"})
    assert wide == ("facility/v1/s01/#", "facility/v1/s02/#")
    assert devices[:3] == (
        "facility/v1/s01/+/+/telemetry",
        "facility/v1/s01/+/+/event",
        "facility/v1/s01/+/+/status",
    )
    assert len(devices) == 6
