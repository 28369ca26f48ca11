"""Maintenance windows through the HTTP API of the running service: held alarms, limits, release."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import Api, Publisher, wait_until

pytestmark = pytest.mark.services

BREAKER = "facility/v1/s1/lighting_circuit/lc-1/telemetry"


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def _trip(publisher: Publisher, seq: int = 1) -> None:
    metrics = {"on": False, "breaker_tripped": True, "power_w": 0.0, "lamp_failures": 0.0}
    ts = int(datetime.now(UTC).timestamp() * 1000)
    publisher.publish_all([(BREAKER, {"ts": ts, "seq": seq, "metrics": metrics})])


def _alarm(api: Api, rule: str) -> dict[str, Any] | None:
    found = [a for a in api.get("/api/v1/alarms").json() if a["rule"] == rule]
    return found[0] if found else None


def test_a_window_made_through_the_api_holds_an_alarm_until_it_ends(
    api: Api, service: Any, publisher: Publisher
) -> None:
    now = datetime.now(UTC)
    body = {
        "site": "s1",
        "device_ids": ["lc-1"],
        "start": _iso(now - timedelta(minutes=1)),
        "end": _iso(now + timedelta(hours=2)),
        "reason": "relamping",
    }
    created = api.post("/api/v1/maintenance/windows", body)
    assert created.status_code == 201, created.text
    window = created.json()
    assert window["created_by"] == "admin" and window["closed_at"] is None
    _trip(publisher)
    wait_until(lambda: _alarm(api, "breaker_tripped") is not None, what="the breaker's alarm")
    alarm = _alarm(api, "breaker_tripped")
    assert alarm is not None and alarm["held"] is True and alarm["ticket_id"] is None
    assert api.get("/api/v1/tickets").json() == []
    ended = api.http.delete(f"/api/v1/maintenance/windows/{window['id']}", headers=api.admin)
    assert ended.status_code == 200 and ended.json()["end"] <= _iso(datetime.now(UTC))
    # The release runs on the service's timer; here it is run at once, as the timer would.
    assert service.windows.release_ended(service.tickets) == 1
    [ticket] = api.get("/api/v1/tickets").json()
    assert ticket["rule"] == "breaker_tripped"
    assert api.get(f"/api/v1/maintenance/windows/{window['id']}").json()["closed_at"] is not None


def test_windows_are_checked_and_limited_to_the_callers_sites(api: Api) -> None:
    now = datetime.now(UTC)
    good = {
        "site": "s1",
        "device_ids": ["lc-1"],
        "start": _iso(now),
        "end": _iso(now + timedelta(hours=1)),
        "reason": "relamping",
    }
    nothing = api.post("/api/v1/maintenance/windows", {**good, "device_ids": []})
    assert nothing.status_code == 422
    backwards = api.post("/api/v1/maintenance/windows", {**good, "end": _iso(now - timedelta(hours=1))})
    assert backwards.status_code == 422 and backwards.json()["detail"][0]["loc"] == ["body", "end"]
    naive = api.post("/api/v1/maintenance/windows", {**good, "start": "2026-12-01T10:00:00"})
    assert naive.status_code == 422
    mine = api.post("/api/v1/maintenance/windows", good).json()
    other = api.post("/api/v1/maintenance/windows", {**good, "site": "s2"}).json()
    api.post(
        "/api/v1/users", {"username": "near", "password": "long enough", "role": "engineer", "sites": ["s1"]}
    )
    token = api.http.post("/api/v1/auth/login", json={"username": "near", "password": "long enough"}).json()
    near = token["access_token"]
    assert [w["id"] for w in api.get("/api/v1/maintenance/windows", token=near).json()] == [mine["id"]]
    assert api.get(f"/api/v1/maintenance/windows/{other['id']}", token=near).status_code == 404
    assert api.post("/api/v1/maintenance/windows", {**good, "site": "s2"}, token=near).status_code == 403
    longer = api.http.patch(
        f"/api/v1/maintenance/windows/{mine['id']}",
        json={"end": _iso(now + timedelta(hours=3))},
        headers={"Authorization": f"Bearer {near}"},
    )
    assert longer.status_code == 200 and longer.json()["end"] == _iso(now + timedelta(hours=3))
