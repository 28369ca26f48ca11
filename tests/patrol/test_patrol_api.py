"""Patrols end to end: the API, real mosquitto, the service's timers and the guard-walk simulator."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from facility.cli import main
from facility.service import Service
from tests.conftest import ADMIN_TOKEN, Api, Publisher, make_settings, wait_until
from tests.servers import Mosquitto

pytestmark = pytest.mark.services

SITE = "s1"
READER = "facility/v1/s1/patrol_reader/reader-1/event"
CHECKPOINTS = ["cp-a", "cp-b", "cp-c", "cp-d", "cp-e"]


Start = Callable[..., tuple[Service, Api]]


@pytest.fixture
def start_service(tmp_path: Path, mosquitto: Mosquitto, db_url: str) -> Iterator[Start]:
    """Starts the service with these settings (records in SQLite or PostgreSQL) and its API."""
    running: list[tuple[Service, Api]] = []

    def start(**settings: Any) -> tuple[Service, Api]:
        svc = Service(
            make_settings(
                tmp_path, mqtt_url=mosquitto.url, admin_token=ADMIN_TOKEN, database_url=db_url, **settings
            )
        )
        svc.start()
        assert svc.wait_ready(15)
        running.append((svc, Api(svc.app())))
        return running[-1]

    yield start
    for svc, api in running:
        api.close()
        svc.stop()


@pytest.fixture
def patrol(start_service: Start) -> tuple[Service, Api]:
    """The service with one-second patrol graces: deadlines fall within a test."""
    return start_service(patrol_grace_s=1, patrol_start_grace_s=1)


def _route(api: Api, after_min: list[float], route_id: str = "r-night") -> None:
    for i, cp in enumerate(CHECKPOINTS[: len(after_min)]):
        body = {
            "id": cp,
            "site": SITE,
            "name": f"Checkpoint {cp}",
            "tag": f"tag-{cp}",
            "location": f"B2 bay {i}",
        }
        r = api.post("/api/v1/patrol/checkpoints", body)
        assert r.status_code in (201, 409), r.text
    stops = [{"checkpoint": cp, "after_min": m} for cp, m in zip(CHECKPOINTS, after_min, strict=False)]
    r = api.post(
        "/api/v1/patrol/routes", {"id": route_id, "site": SITE, "name": "Night B2", "checkpoints": stops}
    )
    assert r.status_code == 201, r.text


def _round(api: Api, start: datetime, guard: str = "g-1", route: str = "r-night") -> dict[str, Any]:
    r = api.post("/api/v1/patrol/rounds", {"route": route, "guard": guard, "start": start.isoformat()})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def _live_round(api: Api) -> tuple[datetime, dict[str, Any]]:
    """A two-checkpoint route, the second an hour on, and a round of it starting now."""
    _route(api, [0, 60])
    start = datetime.now(UTC)
    return start, _round(api, start)


def _statuses(api: Api, round_id: int) -> dict[str, str]:
    body = api.get(f"/api/v1/patrol/rounds/{round_id}").json()
    return {c["checkpoint"]: c["status"] for c in body["checkpoints"]} | {"round": body["status"]}


def _scan(
    ts: datetime, tag: str, guard: str = "g-1", code: str = "PATROL_SCAN", **extra: str
) -> tuple[str, Any]:
    return READER, {
        "ts": int(ts.timestamp() * 1000),
        "code": code,
        "detail": {"tag": tag, "guard": guard, **extra},
    }


def _patrol_tickets(api: Api) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = api.get("/api/v1/tickets", params={"source": "patrol"}).json()
    return found


def test_a_round_walked_by_the_simulator_shows_each_status_and_tickets_the_missed(
    start_service: Start, mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Default tolerance and grace: late is 5 to 15 minutes after the due time, then missed. The
    # round is entered after its deadlines, so what was not scanned is missed after 10 s.
    _service, api = start_service()
    _route(api, [0, 10, 20, 30, 40])
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    created = _round(api, start)
    assert created["status"] == "scheduled"
    assert [c["due"] for c in created["checkpoints"]][1] == (
        start + timedelta(minutes=10)
    ).isoformat().replace("+00:00", "Z")
    monkeypatch.setenv("FACILITY_MQTT_URL", mosquitto.url)
    argv = ["patrol", "walk", "--api", api.url, "--token", ADMIN_TOKEN, "--round", str(created["id"])]
    # b skipped; d and e walked in each other's place: e out of order, d ten minutes late.
    assert main([*argv, "--skip", "cp-b", "--swap", "cp-d", "cp-e", "--reader", "reader-1"]) == 0
    expected = {
        "cp-a": "on_time",
        "cp-b": "missed",
        "cp-c": "on_time",
        "cp-d": "late",
        "cp-e": "wrong_order",
        "round": "incomplete",
    }
    wait_until(lambda: _statuses(api, created["id"]) == expected, what="every checkpoint's status")
    wait_until(lambda: len(_patrol_tickets(api)) == 1, what="the patrol ticket")
    [ticket] = _patrol_tickets(api)
    assert ticket["class"] == "major" and ticket["patrol_round_id"] == created["id"]
    audit = api.get(f"/api/v1/tickets/{ticket['id']}").json()["audit"]
    missed = {e["detail"].get("detail", e["detail"]).get("checkpoint") for e in audit}
    assert "cp-b" in missed and not {"cp-a", "cp-c", "cp-d", "cp-e"} & missed, audit

    scanned = api.get(f"/api/v1/patrol/rounds/{created['id']}").json()["checkpoints"]
    assert scanned[3]["offset_s"] == 600 and scanned[3]["scanned_at"] is not None
    report = api.get("/api/v1/patrol/report", params={"site": SITE}).json()
    [guard] = report["by_guard"]
    assert guard["guard"] == "g-1" and guard["rounds"] == 1 and guard["completion_rate"] == 0.0
    assert guard["on_time_rate"] == pytest.approx(2 / 5)


def test_deadlines_fire_on_timers_without_any_scan(patrol: tuple[Service, Api]) -> None:
    _service, api = patrol
    _route(api, [0, 0.05])  # the second checkpoint 3 s after the start
    created = _round(api, datetime.now(UTC) + timedelta(seconds=1))
    wait_until(
        lambda: _statuses(api, created["id"]) == {"cp-a": "missed", "cp-b": "missed", "round": "incomplete"},
        what="both checkpoints missed",
    )
    alarms = api.get("/api/v1/alarms").json()
    rules = {a["rule"] for a in alarms if a["device_id"] == f"round-{created['id']}"}
    assert rules == {"round_not_started", "checkpoint_missed"}
    [ticket] = _patrol_tickets(api)
    assert ticket["class"] == "major" and ticket["patrol_round_id"] == created["id"]


def test_a_late_upload_is_judged_by_scan_time_and_clears_the_missed_alarm(
    patrol: tuple[Service, Api], publisher: Publisher
) -> None:
    _service, api = patrol
    _route(api, [0, 0.05])
    start = datetime.now(UTC)
    created = _round(api, start)
    wait_until(lambda: _statuses(api, created["id"])["round"] == "incomplete", what="the round to end missed")
    # The reader was offline; docked now, it uploads scans made on time.
    publisher.publish_all([_scan(start, "tag-cp-a"), _scan(start + timedelta(seconds=3), "tag-cp-b")])
    expected = {"cp-a": "on_time", "cp-b": "on_time", "round": "completed"}
    wait_until(lambda: _statuses(api, created["id"]) == expected, what="the uploaded scans")
    active = {
        a["rule"] for a in api.get("/api/v1/alarms").json() if a["device_id"] == f"round-{created['id']}"
    }
    assert active == set()
    # The ticket raised while they looked missed stays for a person to close.
    assert len(_patrol_tickets(api)) == 1


def test_repeated_scans_count_once_and_early_scans_are_early(
    patrol: tuple[Service, Api], publisher: Publisher
) -> None:
    _service, api = patrol
    _route(api, [0, 30, 40])
    start = datetime.now(UTC) - timedelta(hours=1)
    created = _round(api, start)
    publisher.publish_all(
        [
            _scan(start, "tag-cp-a"),
            _scan(start + timedelta(seconds=20), "tag-cp-a"),  # read again: the same visit
            _scan(start + timedelta(minutes=20), "tag-cp-b"),  # ten minutes early
            _scan(start + timedelta(minutes=40), "tag-cp-c"),
        ]
    )
    expected = {"cp-a": "on_time", "cp-b": "early", "cp-c": "on_time", "round": "completed"}
    wait_until(lambda: _statuses(api, created["id"]) == expected, what="the statuses")
    assert _patrol_tickets(api) == []


def test_unknown_tags_and_guards_not_on_the_round_are_routine(
    patrol: tuple[Service, Api], publisher: Publisher
) -> None:
    _service, api = patrol
    start, created = _live_round(api)
    publisher.publish_all([_scan(start, "tag-nobody-knows"), _scan(start, "tag-cp-a", guard="g-intruder")])
    wait_until(lambda: len(api.get("/api/v1/alarms").json()) >= 2, what="two alarms")
    rules = {a["rule"]: a for a in api.get("/api/v1/alarms").json()}
    assert rules["patrol_unknown_tag"]["class"] == "routine"
    assert rules["patrol_guard_not_on_round"]["device_id"] == f"round-{created['id']}"
    # Unknown tags gather on one ticket for the site; a stranger on the round goes on the round's.
    tickets = {t["device_id"]: t for t in _patrol_tickets(api)}
    assert set(tickets) == {"unknown-tags", f"round-{created['id']}"}
    assert {t["class"] for t in tickets.values()} == {"routine"}
    assert tickets[f"round-{created['id']}"]["patrol_round_id"] == created["id"]
    assert _statuses(api, created["id"])["cp-a"] == "pending"  # the intruder's scan does not count


def test_findings_open_a_ticket_or_corroborate_the_devices_open_one(
    patrol: tuple[Service, Api], publisher: Publisher
) -> None:
    _service, api = patrol
    start, _created = _live_round(api)
    lamp = api.post(
        "/api/v1/tickets", {"site": SITE, "device_id": "light-b2-07", "description": "Lamp flickering in B2"}
    ).json()
    finding = "PATROL_FINDING"
    publisher.publish_all(
        [
            _scan(start, "tag-cp-a", code=finding, text="lamp out above bay 31", device_id="light-b2-07"),
            _scan(start + timedelta(seconds=1), "tag-cp-b", code=finding, text="fire door propped open"),
            _scan(
                start + timedelta(seconds=2), "tag-cp-a", code=finding, text="pump noisy", device_id="pump-2"
            ),
        ]
    )
    wait_until(lambda: len(_patrol_tickets(api)) == 2, what="two finding tickets")
    door, pump = sorted(_patrol_tickets(api), key=lambda t: t["id"])
    assert (
        door["location"] == "B2 bay 1"
        and door["device_id"] is None
        and door["title"].endswith("propped open")
    )
    assert door["patrol_round_id"] is not None
    assert pump["device_id"] == "pump-2" and pump["class"] == "routine"
    audit = api.get(f"/api/v1/tickets/{lamp['id']}").json()["audit"]
    [corroborated] = [e for e in audit if e["action"] == "corroborated"]
    assert corroborated["actor"] == "g-1" and corroborated["detail"]["text"] == "lamp out above bay 31"
    assert corroborated["detail"]["checkpoint"] == "cp-a"


def test_guards_see_only_their_own_rounds(patrol: tuple[Service, Api]) -> None:
    _service, api = patrol
    _route(api, [0])
    mine = _round(api, datetime.now(UTC) + timedelta(hours=1), guard="g-1")
    _round(api, datetime.now(UTC) + timedelta(hours=2), guard="g-2")
    token = api.post("/api/v1/tokens", {"name": "g-1", "role": "guard"}).json()["token"]
    listed = api.get("/api/v1/patrol/rounds", token=token).json()
    assert [r["id"] for r in listed] == [mine["id"]]
    assert api.get(f"/api/v1/patrol/rounds/{mine['id'] + 1}", token=token).status_code == 403
    started = api.post(
        "/api/v1/patrol/rounds",
        {"route": "r-night", "guard": "g-2", "start": datetime.now(UTC).isoformat()},
        token=token,
    )
    assert started.status_code == 403
    assert (
        api.post(
            "/api/v1/patrol/checkpoints", {"site": SITE, "name": "x", "tag": "x"}, token=token
        ).status_code
        == 403
    )


def test_a_plan_creates_its_rounds_on_schedule(patrol: tuple[Service, Api]) -> None:
    _service, api = patrol
    _route(api, [0, 10])
    soon = datetime.now(UTC) + timedelta(minutes=5)
    body = {"route": "r-night", "start_times": [soon.strftime("%H:%M")], "guards": ["g-1", "g-2"]}
    plan = api.post("/api/v1/patrol/plans", body)
    assert plan.status_code == 201, plan.text
    assert plan.json()["weekdays"] == [1, 2, 3, 4, 5, 6, 7] and plan.json()["until"] is None
    rounds = api.get("/api/v1/patrol/rounds").json()
    assert [(r["plan"], r["guard"], r["guards"], r["status"]) for r in rounds] == [
        (plan.json()["id"], "g-1", ["g-1", "g-2"], "scheduled")
    ]
    assert rounds[0]["start"].startswith(soon.strftime("%Y-%m-%dT%H:%M"))
    named = {**body, "weekdays": ["Sat", "sunday"], "guards": ["g-3"]}
    assert api.post("/api/v1/patrol/plans", named).json()["weekdays"] == [6, 7]


def test_bad_patrol_requests_get_clear_errors(patrol: tuple[Service, Api]) -> None:
    _service, api = patrol
    _route(api, [0])
    bad_route = {"site": SITE, "name": "x", "checkpoints": [{"checkpoint": "cp-zz", "after_min": 0}]}
    r = api.post("/api/v1/patrol/routes", bad_route)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "checkpoints"]
    assert api.post("/api/v1/patrol/routes", {**bad_route, "checkpoints": []}).status_code == 422
    naive = {"route": "r-night", "guard": "g-1", "start": "2026-11-27T22:00:00"}
    assert api.post("/api/v1/patrol/rounds", naive).status_code == 422
    assert (
        api.post(
            "/api/v1/patrol/rounds", {**naive, "route": "nope", "start": "2026-11-27T22:00:00Z"}
        ).status_code
        == 422
    )
    assert (
        api.post(
            "/api/v1/patrol/plans", {"route": "r-night", "start_times": ["25:00"], "guards": ["g"]}
        ).status_code
        == 422
    )
    assert api.get("/api/v1/patrol/rounds/999").status_code == 404
    dup = {"id": "cp-a", "site": SITE, "name": "again", "tag": "tag-other"}
    assert api.post("/api/v1/patrol/checkpoints", dup).status_code == 409
    assert api.get("/api/v1/patrol/rounds", token=None).status_code == 401


def test_a_redelivered_scan_or_finding_is_applied_once(
    patrol: tuple[Service, Api], publisher: Publisher
) -> None:
    service, api = patrol
    start, created = _live_round(api)
    scan = _scan(start, "tag-cp-a")
    finding = _scan(start + timedelta(seconds=5), "tag-cp-a", code="PATROL_FINDING", text="broken lock")
    # Without seq the collector cannot tell a redelivery; the patrol records can.
    publisher.publish_all([scan, finding, scan, finding])
    wait_until(lambda: service.collector.accepted == 4, what="all four delivered")
    wait_until(lambda: _statuses(api, created["id"])["cp-a"] == "on_time", what="the scan")
    assert len(_patrol_tickets(api)) == 1
    assert service.patrol.intake.waiting == 0


def test_a_finding_at_the_moment_of_its_scan_is_kept_as_well(
    patrol: tuple[Service, Api], publisher: Publisher
) -> None:
    _service, api = patrol
    start, created = _live_round(api)
    same_time = [
        _scan(start, "tag-cp-a"),
        _scan(start, "tag-cp-a", code="PATROL_FINDING", text="gate broken"),
    ]
    publisher.publish_all(same_time)
    wait_until(lambda: len(_patrol_tickets(api)) == 1, what="the finding's ticket")
    wait_until(lambda: _statuses(api, created["id"])["cp-a"] == "on_time", what="the scan")


def test_a_stranger_and_an_unknown_tag_do_not_share_a_ticket_with_the_readers_sos(
    patrol: tuple[Service, Api], publisher: Publisher
) -> None:
    _service, api = patrol
    start, created = _live_round(api)
    publisher.publish_all(
        [
            _scan(start, "tag-nobody-knows"),
            _scan(start, "tag-cp-a", guard="g-intruder"),
            _scan(start + timedelta(seconds=1), "tag-cp-a", code="SOS"),
        ]
    )
    wait_until(lambda: len(api.get("/api/v1/tickets").json()) == 3, what="three tickets")
    by_device = {t["device_id"]: t for t in api.get("/api/v1/tickets").json()}
    assert by_device["reader-1"]["class"] == "emergency" and by_device["reader-1"]["rule"] == "sos"
    assert by_device["unknown-tags"]["class"] == "routine"
    assert by_device[f"round-{created['id']}"]["patrol_round_id"] == created["id"]


def test_guards_cannot_put_others_on_a_round_and_times_stay_sane(patrol: tuple[Service, Api]) -> None:
    _service, api = patrol
    _route(api, [0])
    token = api.post("/api/v1/tokens", {"name": "g-1", "role": "guard"}).json()["token"]
    now = datetime.now(UTC).isoformat()
    crew = {"route": "r-night", "guard": "g-1", "guards": ["g-2"], "start": now}
    assert api.post("/api/v1/patrol/rounds", crew, token=token).status_code == 403
    for start in ("0001-01-01T00:05:00Z", "9999-12-31T23:59:00Z"):
        r = api.post("/api/v1/patrol/rounds", {"route": "r-night", "guard": "g-1", "start": start})
        assert r.status_code == 422, r.text
    assert api.get("/api/v1/patrol/rounds", params={"from": "0001-01-01T00:00:00+05:00"}).status_code == 422
    assert api.get("/api/v1/patrol/report", params={"until": "0001-01-01T00:00:00Z"}).status_code == 422
    huge = {"route": "r-night", "start_times": ["99999999999999999999:00"], "guards": ["g-1"]}
    assert api.post("/api/v1/patrol/plans", huge).status_code == 422
    stops = [{"checkpoint": "cp-a", "after_min": "Infinity"}]
    assert (
        api.post("/api/v1/patrol/routes", {"site": SITE, "name": "x", "checkpoints": stops}).status_code
        == 422
    )
    twice = {"route": "r-night", "guard": "g-1", "guards": ["g-1", "g-3", "g-3"], "start": now}
    assert api.post("/api/v1/patrol/rounds", twice).json()["guards"] == ["g-1", "g-3"]


def test_an_alarm_where_a_round_is_walking_shows_as_a_verify_stop_until_the_guard_scans_there(
    patrol: tuple[Service, Api], publisher: Publisher
) -> None:
    _service, api = patrol
    for cp, floor in [("cp-lobby", "G"), ("cp-b2", "B2")]:
        body = {
            "id": cp,
            "site": SITE,
            "name": f"Checkpoint {cp}",
            "tag": f"tag-{cp}",
            "building": "A",
            "floor": floor,
        }
        r = api.post("/api/v1/patrol/checkpoints", body)
        assert r.status_code == 201, r.text
        assert (r.json()["building"], r.json()["floor"]) == ("A", floor)
    stops = [{"checkpoint": "cp-lobby", "after_min": 0}, {"checkpoint": "cp-b2", "after_min": 60}]
    assert (
        api.post(
            "/api/v1/patrol/routes", {"id": "r-b2", "site": SITE, "name": "B2", "checkpoints": stops}
        ).status_code
        == 201
    )
    device = {"site": SITE, "device_id": "sump-1", "device_type": "sump_pit", "building": "A", "floor": "B2"}
    assert api.post("/api/v1/devices", device).status_code == 201
    start = datetime.now(UTC)
    created = _round(api, start, route="r-b2")
    publisher.publish_all([_scan(start, "tag-cp-lobby")])
    wait_until(
        lambda: api.get(f"/api/v1/patrol/rounds/{created['id']}").json()["started_at"] is not None,
        what="started",
    )
    ts = int(datetime.now(UTC).timestamp() * 1000)
    publisher.publish_all(
        [("facility/v1/s1/sump_pit/sump-1/telemetry", {"ts": ts, "seq": 1, "metrics": {"level_pct": 97}})]
    )

    def verify() -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = api.get(f"/api/v1/patrol/rounds/{created['id']}").json()["verify"]
        return found

    wait_until(lambda: len(verify()) == 1, what="a verify stop")
    [stop] = verify()
    assert (stop["checkpoint"], stop["status"], stop["device_id"]) == ("cp-b2", "pending", "sump-1")
    publisher.publish_all([_scan(datetime.now(UTC), "tag-cp-b2")])
    wait_until(lambda: verify()[0]["status"] == "verified", what="the stop verified")
    audit = api.get(f"/api/v1/tickets/{stop['ticket']}").json()["audit"]
    [verified] = [e for e in audit if e["action"] == "verified"]
    assert verified["actor"] == "g-1" and verified["detail"]["result"] == "checked, nothing found"
    # The detour an hour early: the round's own stop at cp-b2 still waits for its time.
    assert _statuses(api, created["id"])["cp-b2"] == "pending"
