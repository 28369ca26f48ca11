"""The HTTP API, as people and systems use it: real HTTP to a running service on a real broker."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from tests.conftest import Api, Publisher, wait_until

pytestmark = pytest.mark.services

ELEVATOR = "facility/v1/s1/elevator/elev-3/telemetry"


def _trapped(seq: int, t0: int) -> dict[str, Any]:
    return {
        "ts": t0 + seq * 5000,
        "seq": seq,
        "metrics": {"occupied": True, "moving": False, "door": "closed", "in_door_zone": False, "floor": 7},
    }


def test_nothing_under_api_v1_answers_without_a_valid_token(api: Api) -> None:
    # Every operation the API describes, so that none is left out however the routers nest.
    paths = api.get("/openapi.json", token=None).json()["paths"]
    attempts = 0
    # The log-in and log-out are how a token is had and given up: the only ones open without one.
    open_paths = {"/api/v1/auth/login", "/api/v1/auth/logout"}
    for path, operations in paths.items():
        if not path.startswith("/api/v1") or path in open_paths:
            continue
        concrete = re.sub(r"\{(\w+)\}", lambda m: "acknowledge" if m[1] == "action" else "1", path)
        for method in operations:
            for token in (None, "wrong-token"):
                # Each from an address of its own: one address failing this often is held back (429).
                attempts += 1
                headers = {"X-Forwarded-For": f"198.51.100.{attempts}"}
                if token:
                    headers["Authorization"] = f"Bearer {token}"
                r = api.http.request(method, concrete, headers=headers)
                assert r.status_code == 401, (method, concrete, token, r.status_code)
    assert attempts >= 2 * 25, "every operation under /api/v1 was tried"
    assert api.get("/health", token=None).json()["status"] == "ok"


def test_roles_limit_what_each_token_may_do(api: Api) -> None:
    tokens = {}
    for role in ("manager", "engineer", "guard"):
        r = api.post("/api/v1/tokens", {"name": f"{role}-1", "role": role})
        assert r.status_code == 201
        tokens[role] = r.json()["token"]
    assert (
        api.post("/api/v1/tokens", {"name": "x", "role": "admin"}, token=tokens["manager"]).status_code == 403
    )
    report = {"site": "s1", "title": "Lobby light flickering", "reporter": "Unit 3A"}
    r = api.post("/api/v1/tickets", report, token=tokens["guard"])
    assert r.status_code == 201
    ticket_id = r.json()["id"]
    assert api.post(f"/api/v1/tickets/{ticket_id}/acknowledge", token=tokens["guard"]).status_code == 403
    assert api.get("/api/v1/dead-letters", token=tokens["guard"]).status_code == 403
    r = api.post(f"/api/v1/tickets/{ticket_id}/acknowledge", token=tokens["engineer"])
    assert r.status_code == 200 and r.json()["status"] == "acknowledged"
    assert r.json()["audit"][-1]["actor"] == "engineer-1"
    assert api.post("/api/v1/tokens", {"name": "x", "role": "root"}).status_code == 422


def test_an_occupant_report_is_worked_and_closed_as_the_manual_says(api: Api) -> None:
    r = api.post(
        "/api/v1/tickets", {"site": "s1", "title": "No water on 12F", "class": "major", "reporter": "12B"}
    )
    assert r.status_code == 201
    t = r.json()
    assert (t["source"], t["class"], t["status"], t["occurrences"]) == ("occupant", "major", "open", 1)
    url = f"/api/v1/tickets/{t['id']}"
    assert api.post(f"{url}/resolve").status_code == 409  # open → resolved is not a transition
    assert api.get(url).json()["status"] == "open"
    assert api.post(f"{url}/acknowledge").status_code == 200
    assert api.post(f"{url}/assign", {"assignee": "eng-2"}).json()["assignee"] == "eng-2"
    assert api.post(f"{url}/start").status_code == 200
    r = api.post(f"{url}/resolve", {"cause": "pump tripped"})
    assert r.status_code == 422
    assert {d["loc"][-1] for d in r.json()["detail"]} == {"measures", "result"}
    record: dict[str, object] = {
        "cause": "pump tripped",
        "measures": "reset and tested",
        "result": "water back",
    }
    r = api.post(f"{url}/resolve", record)
    assert r.status_code == 409 and "emergency_plan_started" in r.json()["detail"]
    record |= {"emergency_plan_started": True, "leadership_informed": True}
    r = api.post(f"{url}/resolve", record)
    assert r.status_code == 422  # a major fault is classed (§9.2.1)
    assert [d["loc"][-1] for d in r.json()["detail"]] == ["cause_class"]
    assert api.post(f"{url}/resolve", {**record, "cause_class": "weather"}).status_code == 422
    r = api.post(f"{url}/resolve", {**record, "cause_class": "equipment", "satisfaction": 5})
    assert r.status_code == 422 and [d["loc"][-1] for d in r.json()["detail"]] == ["satisfaction"]
    r = api.post(f"{url}/resolve", {**record, "cause_class": "equipment"})
    assert r.status_code == 200 and r.json()["resolved_at"] and r.json()["cause_class"] == "equipment"
    assert api.post(f"{url}/close").status_code == 422  # an occupant ticket needs the follow-up
    assert api.post(f"{url}/close", {"followup": "called", "satisfaction": 6}).status_code == 422
    r = api.post(f"{url}/close", {"followup": "called", "satisfaction_comment": "fine"})
    assert r.status_code == 422  # a comment comes with its score
    r = api.post(
        f"{url}/close",
        {"followup": "called 12B, satisfied", "satisfaction": 4, "satisfaction_comment": "slow to start"},
    )
    assert r.status_code == 200 and r.json()["status"] == "closed"
    assert (r.json()["satisfaction"], r.json()["satisfaction_comment"]) == (4, "slow to start")
    actions = [a["action"] for a in api.get(url).json()["audit"]]
    assert actions == ["open", "acknowledge", "assign", "start", "resolve", "close"]
    assert api.post(f"{url}/fly").status_code == 422
    assert api.post("/api/v1/tickets/999999/acknowledge").status_code == 404
    assert api.post("/api/v1/tickets", {"site": "S 1", "title": "x"}).status_code == 422
    assert api.post("/api/v1/tickets", {"site": "s1"}).status_code == 422  # neither title nor description
    described = api.post(
        "/api/v1/tickets", {"site": "s1", "description": "Door of unit 5C will not lock\nsince noon"}
    )
    assert described.status_code == 201 and described.json()["title"] == "Door of unit 5C will not lock"


def test_an_entrapment_published_over_mqtt_is_a_ticket_in_the_api(api: Api, publisher: Publisher) -> None:
    r = api.post(
        "/api/v1/devices",
        {
            "site": "s1",
            "device_id": "elev-3",
            "device_type": "elevator",
            "name": "Elevator 3",
            "building": "Building B",
        },
    )
    assert r.status_code == 201
    t0 = int(time.time() * 1000)
    publisher.publish_all([(ELEVATOR, _trapped(i, t0)) for i in range(5)])  # 20 s of device time

    def ticket() -> list[dict[str, Any]]:
        return list(api.get("/api/v1/tickets", params={"class": "emergency", "device_id": "elev-3"}).json())

    wait_until(lambda: len(ticket()) == 1, what="the entrapment ticket")
    [t] = ticket()
    assert (t["rule"], t["source"], t["status"]) == ("entrapment", "alarm", "open")
    assert t["title"].endswith("Elevator 3, Building B")
    assert api.get("/api/v1/tickets", params={"status": "closed"}).json() == []
    [a] = api.get("/api/v1/alarms").json()
    assert (a["rule"], a["class"], a["active"], a["acknowledged"]) == ("entrapment", "emergency", True, False)
    acked = api.post(f"/api/v1/alarms/{a['id']}/acknowledge").json()
    assert acked["acknowledged"] and acked["active"]
    wait_until(lambda: bool(api.get("/api/v1/devices/s1/elev-3").json()["latest"]), what="device flushed")
    device = api.get("/api/v1/devices/s1/elev-3").json()
    assert device["online"] is True and device["open_alarms"] == ["entrapment"]
    assert device["latest"]["floor"] == 7
    wait_until(
        lambda: len(api.get("/api/v1/devices/s1/elev-3/history", params={"metric": "floor"}).json()) == 5,
        what="history from the time-series store",
    )
    assert api.get("/api/v1/devices/s1/nope/history", params={"metric": "floor"}).status_code == 404


def test_a_registered_device_that_never_reports_is_flagged_offline(api: Api) -> None:
    r = api.post(
        "/api/v1/devices",
        {"site": "s1", "device_id": "pump-9", "device_type": "water_pump", "name": "Pump 9", "interval_s": 1},
    )
    assert r.status_code == 201 and r.json()["online"] is None
    wait_until(
        lambda: api.get("/api/v1/devices/s1/pump-9").json()["online"] is False,
        timeout_s=20,
        what="offline after 3 intervals",
    )
    [t] = api.get("/api/v1/tickets", params={"device_id": "pump-9"}).json()
    assert (t["rule"], t["class"]) == ("offline", "routine")
    bad = api.post("/api/v1/devices", {"site": "s1", "device_id": "x", "device_type": "toaster"})
    assert bad.status_code == 422


def test_health_metrics_and_dead_letters(api: Api, publisher: Publisher) -> None:
    publisher.publish_all([(ELEVATOR, b"not json")])
    wait_until(lambda: len(api.get("/api/v1/dead-letters").json()) == 1, what="the dead letter")
    [letter] = api.get("/api/v1/dead-letters").json()
    assert letter["reason"].startswith("payload: not JSON") and letter["topic"] == ELEVATOR
    metrics = api.get("/metrics", token=None).text
    assert "facility_dead_letters_total 1" in metrics and "facility_messages_received_total 1" in metrics
    health = api.get("/health", token=None).json()
    assert health["mqtt_connected"] == 1.0
    assert api.get("/openapi.json", token=None).json()["info"]["title"] == "facility"


def test_out_of_range_and_nul_input_answers_4xx_not_500(api: Api) -> None:
    for path in ("/api/v1/tickets/9223372036854775808", "/api/v1/tickets/2147483648", "/api/v1/tickets/0"):
        assert api.get(path).status_code == 422
    assert api.post("/api/v1/tickets/2147483648/acknowledge").status_code == 422
    assert api.post("/api/v1/alarms/9223372036854775808/acknowledge").status_code == 422
    assert api.get("/api/v1/tickets", params={"offset": 2**63}).status_code == 422
    assert api.get("/api/v1/tickets", params={"site": "s\x00"}).status_code == 422
    assert api.post("/api/v1/tickets", {"site": "s1", "title": "bad\x00title"}).status_code == 422
    api.post("/api/v1/devices", {"site": "s1", "device_id": "d1", "device_type": "water_tank"})
    r = api.get(
        "/api/v1/devices/s1/d1/history", params={"metric": "level_pct", "start": "0001-01-01T00:00:00"}
    )
    assert r.status_code in (200, 422)
    r = api.get(
        "/api/v1/devices/s1/d1/history", params={"metric": "level_pct", "start": "2026-11-27T00:00:00"}
    )
    assert r.status_code == 200
