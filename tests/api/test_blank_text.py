"""Free text that is only whitespace is refused with 422 naming the field, on every route that takes text."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tests.conftest import Api

pytestmark = pytest.mark.services

BLANKS = ["   ", "\t\n", "\u3000"]  # spaces, a tab and a line break, an ideographic space


def _refused(api: Api, path: str, body: dict[str, Any], loc: list[Any], token: str | None = None) -> None:
    r = api.post(path, body, **({"token": token} if token else {}))
    assert r.status_code == 422, (path, body, r.status_code, r.text)
    assert [d["loc"] for d in r.json()["detail"]] == [loc], r.json()


def test_a_blank_description_or_title_is_a_422_for_every_role(api: Api) -> None:
    guard = api.post("/api/v1/tokens", {"name": "g-1", "role": "guard"}).json()["token"]
    for blank in BLANKS:
        for token in (None, guard):
            described = {"site": "s1", "description": blank}
            _refused(api, "/api/v1/tickets", described, ["body", "description"], token)
            _refused(api, "/api/v1/tickets", {"site": "s1", "title": blank}, ["body", "title"], token)
        for field in ("location", "reporter", "description"):
            body = {"site": "s1", "title": "Leak in B2", field: blank}
            _refused(api, "/api/v1/tickets", body, ["body", field])
    assert api.get("/api/v1/tickets").json() == [], "nothing was opened"
    # Text around the blank is kept as given.
    r = api.post("/api/v1/tickets", {"site": "s1", "description": "  \n Leak in B2\nnear the pump"})
    assert r.status_code == 201 and r.json()["title"] == "Leak in B2"


def test_blank_text_in_a_ticket_action_is_a_422(api: Api) -> None:
    ticket = api.post("/api/v1/tickets", {"site": "s1", "title": "No water on 12F"}).json()
    url = f"/api/v1/tickets/{ticket['id']}"
    assert api.post(f"{url}/acknowledge").status_code == 200
    _refused(api, f"{url}/assign", {"assignee": " "}, ["body", "assignee"])
    assert api.post(f"{url}/start").status_code == 200
    for field in ("cause", "measures", "result", "note", "temporary_measures", "followup"):
        record = {"cause": "pump tripped", "measures": "reset", "result": "water back", field: "\n \t"}
        _refused(api, f"{url}/resolve", record, ["body", field])
    assert api.get(url).json()["status"] == "in_progress"


def test_blank_text_in_devices_tokens_and_patrols_is_a_422(api: Api) -> None:
    device = {"site": "s1", "device_id": "pump-1", "device_type": "water_pump"}
    for field in ("name", "building", "floor", "location", "device_type"):
        _refused(api, "/api/v1/devices", {**device, field: "  "}, ["body", field])
    _refused(api, "/api/v1/tokens", {"name": " ", "role": "engineer"}, ["body", "name"])
    checkpoint = {"id": "cp-1", "site": "s1", "name": "Gate", "tag": "tag-1"}
    for field in ("name", "tag", "location"):
        _refused(api, "/api/v1/patrol/checkpoints", {**checkpoint, field: " "}, ["body", field])
    assert api.post("/api/v1/patrol/checkpoints", checkpoint).status_code == 201
    stops = [{"checkpoint": "cp-1", "after_min": 0}]
    route = {"id": "night", "site": "s1", "name": "\t", "checkpoints": stops}
    _refused(api, "/api/v1/patrol/routes", route, ["body", "name"])
    assert api.post("/api/v1/patrol/routes", {**route, "name": "Night"}).status_code == 201
    plan = {"route": "night", "start_times": ["22:00"], "guards": ["g-1"]}
    _refused(api, "/api/v1/patrol/plans", {**plan, "start_times": [" "]}, ["body", "start_times"])
    _refused(api, "/api/v1/patrol/plans", {**plan, "guards": [" "]}, ["body", "guards"])
    start = datetime.now(UTC).isoformat()
    walk = {"route": "night", "guard": "g-1", "start": start, "guards": ["  "]}
    _refused(api, "/api/v1/patrol/rounds", walk, ["body", "guards"])
