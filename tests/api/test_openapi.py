"""The OpenAPI declares every error an operation can answer, and the errors come in the declared shapes."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.conftest import Api

pytestmark = pytest.mark.services

# Who may not do what (README, "The API"): the role refused, for the operations that refuse one.
REFUSED = {
    ("post", "/api/v1/tickets/{ticket_id}/{action}"): "guard",
    ("post", "/api/v1/alarms/{alarm_id}/acknowledge"): "guard",
    ("post", "/api/v1/devices"): "guard",
    ("get", "/api/v1/dead-letters"): "guard",
    ("post", "/api/v1/tokens"): "manager",
    ("get", "/api/v1/tokens"): "engineer",
    ("delete", "/api/v1/tokens/{token_id}"): "manager",
    ("post", "/api/v1/patrol/checkpoints"): "engineer",
    ("post", "/api/v1/patrol/routes"): "guard",
    ("post", "/api/v1/patrol/plans"): "engineer",
    ("post", "/api/v1/patrol/rounds"): "engineer",
    ("get", "/api/v1/patrol/rounds/{round_id}"): "guard",  # another guard's round
    ("get", "/api/v1/patrol/report"): "guard",
    ("get", "/api/v1/reports/quality"): "guard",
    ("get", "/api/v1/users"): "manager",
    ("post", "/api/v1/users"): "engineer",
    ("get", "/api/v1/users/{username}"): "guard",
    ("post", "/api/v1/users/{username}/disable"): "manager",
    ("put", "/api/v1/users/{username}/password"): "engineer",
    ("patch", "/api/v1/users/{username}"): "manager",
    ("delete", "/api/v1/users/{username}"): "engineer",
    ("get", "/api/v1/notifications"): "engineer",
    ("get", "/api/v1/notifications/recipients"): "manager",
    ("put", "/api/v1/notifications/recipients"): "manager",
    # The front desk records occupants' reports and follows them: nothing else.
    ("get", "/api/v1/alarms"): "front_desk",
    ("get", "/api/v1/devices"): "front_desk",
    ("get", "/api/v1/devices/{site}/{device_id}"): "front_desk",
    ("get", "/api/v1/devices/{site}/{device_id}/history"): "front_desk",
    ("get", "/api/v1/patrol/checkpoints"): "front_desk",
    ("get", "/api/v1/patrol/checkpoints/{checkpoint_id}"): "front_desk",
    ("get", "/api/v1/patrol/routes"): "front_desk",
    ("get", "/api/v1/patrol/routes/{route_id}"): "front_desk",
    ("get", "/api/v1/patrol/plans"): "front_desk",
    ("get", "/api/v1/patrol/plans/{plan_id}"): "front_desk",
    ("get", "/api/v1/patrol/rounds"): "front_desk",
    ("post", "/api/v1/maintenance/windows"): "guard",
    ("get", "/api/v1/maintenance/windows"): "front_desk",
    ("get", "/api/v1/maintenance/windows/{window_id}"): "front_desk",
    ("patch", "/api/v1/maintenance/windows/{window_id}"): "guard",
    ("delete", "/api/v1/maintenance/windows/{window_id}"): "guard",
    # Managers (and admins) write plans and contractors; staff read them and mark checklists.
    ("post", "/api/v1/maintenance/plans"): "engineer",
    ("get", "/api/v1/maintenance/plans"): "guard",
    ("get", "/api/v1/maintenance/plans/{plan_id}"): "guard",
    ("put", "/api/v1/maintenance/plans/{plan_id}"): "engineer",
    ("delete", "/api/v1/maintenance/plans/{plan_id}"): "engineer",
    ("post", "/api/v1/maintenance/contractors"): "engineer",
    ("get", "/api/v1/maintenance/contractors"): "guard",
    ("get", "/api/v1/maintenance/contractors/{contractor_id}"): "guard",
    ("put", "/api/v1/maintenance/contractors/{contractor_id}"): "engineer",
    ("delete", "/api/v1/maintenance/contractors/{contractor_id}"): "engineer",
    ("get", "/api/v1/maintenance/work-orders/{ticket_id}"): "guard",
    ("put", "/api/v1/maintenance/work-orders/{ticket_id}/checklist"): "guard",
    ("get", "/api/v1/maintenance/records"): "front_desk",
    ("get", "/api/v1/maintenance/figures"): "guard",
    # A front desk opening other than an occupant's report; a ticket of a site not the caller's.
    ("post", "/api/v1/tickets"): "front_desk",
}
MAINTENANCE = {"site": "s1", "title": "Repaint the lobby", "source": "maintenance"}
# Creates that name the id of what they create, and the refused ticket transition.
CONFLICTS = {
    ("post", "/api/v1/patrol/checkpoints"),
    ("post", "/api/v1/patrol/routes"),
    ("post", "/api/v1/tickets/{ticket_id}/{action}"),
    ("post", "/api/v1/users"),
    ("post", "/api/v1/maintenance/contractors"),
    ("delete", "/api/v1/maintenance/plans/{plan_id}"),
    ("delete", "/api/v1/maintenance/contractors/{contractor_id}"),
    ("put", "/api/v1/maintenance/work-orders/{ticket_id}/checklist"),
}
VALIDATION = "#/components/schemas/HTTPValidationError"
PROBLEM = "#/components/schemas/Problem"


def _operations(api: Api) -> dict[tuple[str, str], dict[str, Any]]:
    spec = api.get("/openapi.json", token=None).json()
    return {
        (m, p): op for p, ops in spec["paths"].items() for m, op in ops.items() if p.startswith("/api/v1")
    }


def _schema(response: dict[str, Any]) -> str:
    return str(response["content"]["application/json"]["schema"]["$ref"])


def test_every_operation_declares_the_errors_it_can_answer(api: Api) -> None:
    operations = _operations(api)
    assert len(operations) >= 27
    for (method, path), op in operations.items():
        declared = op["responses"]
        where = (method, path, sorted(declared))
        if (method, path) == ("post", "/api/v1/auth/logout"):
            assert not {"401", "403", "429"} & set(declared), where
            continue
        assert {"401", "429"} <= set(declared), where
        assert "Retry-After" in declared["429"]["headers"], where
        assert ("403" in declared) == ((method, path) in REFUSED), where
        assert ("404" in declared) == ("{" in path), where
        has_body = "requestBody" in op
        assert ("413" in declared) == has_body, where
        assert ("409" in declared) == ((method, path) in CONFLICTS), where
        if has_body or op.get("parameters"):
            assert _schema(declared["422"]) == VALIDATION, where
        for code, response in declared.items():
            if code.startswith(("4", "5")) and code != "422":
                assert _schema(response) == PROBLEM, (where, code)
    problem = api.get("/openapi.json", token=None).json()["components"]["schemas"]["Problem"]
    assert problem["required"] == ["detail"] and problem["properties"]["detail"]["type"] == "string"


def test_a_role_left_out_gets_the_declared_403(api: Api) -> None:
    tokens = {
        role: api.post("/api/v1/tokens", {"name": f"{role}-1", "role": role}).json()["token"]
        for role in ("manager", "engineer", "guard", "front_desk")
    }
    checkpoint = {"id": "cp-1", "site": "s1", "name": "Gate", "tag": "tag-1"}
    assert api.post("/api/v1/patrol/checkpoints", checkpoint).status_code == 201
    route = {
        "id": "night",
        "site": "s1",
        "name": "Night",
        "checkpoints": [{"checkpoint": "cp-1", "after_min": 0}],
    }
    assert api.post("/api/v1/patrol/routes", route).status_code == 201
    walk = {"route": "night", "guard": "g-2", "start": datetime.now(UTC).isoformat()}
    round_id = api.post("/api/v1/patrol/rounds", walk).json()["id"]
    ticket_id = api.post("/api/v1/tickets", {"site": "s1", "title": "Leak"}).json()["id"]
    ids = {
        "ticket_id": ticket_id,
        "alarm_id": 1,
        "token_id": 1,
        "round_id": round_id,
        "action": "acknowledge",
        "site": "s1",
        "device_id": "d1",
        "checkpoint_id": "cp-1",
        "route_id": "night",
        "plan_id": 1,
        "username": "nobody",
        "window_id": 1,
        "contractor_id": "c-1",
    }
    for (method, path), role in REFUSED.items():
        concrete = re.sub(r"\{(\w+)\}", lambda m: str(ids[m[1]]), path)
        body = MAINTENANCE if (method, path) == ("post", "/api/v1/tickets") else None
        headers = {"Authorization": f"Bearer {tokens[role]}"}
        r = api.http.request(method, concrete, headers=headers, json=body)
        assert r.status_code == 403, (method, concrete, role, r.status_code, r.text)
        assert isinstance(r.json()["detail"], str)


def _invalid(r: Any) -> list[Any]:
    """The locations of a 422, after checking it has the declared shape."""
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert isinstance(detail, list) and detail
    for d in detail:
        assert isinstance(d["loc"], list) and isinstance(d["msg"], str) and isinstance(d["type"], str), d
    return [d["loc"] for d in detail]


def test_every_422_has_the_declared_shape(api: Api) -> None:
    # Raised by the routes themselves, not by FastAPI's validation.
    unknown_type = api.post("/api/v1/devices", {"site": "s1", "device_id": "d1", "device_type": "toaster"})
    assert _invalid(unknown_type) == [["body", "device_type"]]
    assert api.post(
        "/api/v1/devices", {"site": "s1", "device_id": "d1", "device_type": "water_tank"}
    ).is_success
    backwards = {"metric": "level_pct", "start": "2026-11-30T10:00:00Z", "end": "2026-11-30T09:00:00Z"}
    assert _invalid(api.get("/api/v1/devices/s1/d1/history", params=backwards)) == [["query", "start"]]
    old = api.get("/api/v1/patrol/report", params={"from": "1999-12-31T00:00:00Z"})
    assert _invalid(old) == [["query", "from"]]
    route = {"site": "s1", "name": "Night", "checkpoints": [{"checkpoint": "nowhere", "after_min": 0}]}
    assert _invalid(api.post("/api/v1/patrol/routes", route)) == [["body", "checkpoints"]]
    ticket = api.post("/api/v1/tickets", {"site": "s1", "title": "Leak"}).json()
    url = f"/api/v1/tickets/{ticket['id']}"
    for action in ("acknowledge", "start"):
        assert api.post(f"{url}/{action}").status_code == 200
    assert sorted(_invalid(api.post(f"{url}/resolve"))) == [
        ["body", "cause"],
        ["body", "measures"],
        ["body", "result"],
    ]
    # A body that is not UTF-8 is invalid JSON like any other, where FastAPI alone answers 400.
    headers = {**api.admin, "Content-Type": "application/json"}
    for body in (b'{"site": "s1", "title": "\xff"}', b"{not json"):
        assert _invalid(api.http.post("/api/v1/tickets", content=body, headers=headers))[0][0] == "body"
