"""Ticket timing through the API: a report joining an open ticket, and which tickets are overdue."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ground.events import AlarmEvent
from ground.severity import Severity
from records.models import Ticket
from tests.conftest import Api

pytestmark = pytest.mark.services


def _raise(service: Any, device_id: str) -> int:
    """An entrapment alarm on an elevator of s1, as the rules engine raises it; its ticket's id."""
    event = AlarmEvent(
        kind="raised",
        site="s1",
        device_type="elevator",
        device_id=device_id,
        rule="entrapment",
        severity=Severity.EMERGENCY,
        ts=int(time.time() * 1000),
        title="Passenger trapped",
        detail={},
    )
    ticket_id: int = service.tickets.apply_alarm(event)
    return ticket_id


def test_a_report_about_a_device_with_an_open_ticket_joins_it_and_answers_200(api: Api, service: Any) -> None:
    ticket_id = _raise(service, "elev-5")
    report = {
        "site": "s1",
        "device_id": "elev-5",
        "description": "Someone is shouting inside the lift",
        "reporter": "Unit 7C",
        "contact": "138-1111-2222",
    }
    r = api.post("/api/v1/tickets", report)
    assert r.status_code == 200
    body = r.json()
    assert body["joined"] is True and body["id"] == ticket_id and body["occurrences"] == 2
    occurrence = body["audit"][-1]
    assert occurrence["action"] == "occurrence"
    assert (occurrence["detail"]["reporter"], occurrence["detail"]["contact"]) == ("Unit 7C", "138-1111-2222")
    assert occurrence["detail"]["words"] == "Someone is shouting inside the lift"
    # The front desk learns which ticket its report joined, though not an alarm ticket's trail.
    desk = api.post("/api/v1/tokens", {"name": "desk-1", "role": "front_desk"}).json()["token"]
    r = api.post("/api/v1/tickets", {**report, "reporter": "Unit 9A"}, token=desk)
    assert r.status_code == 200 and r.json()["id"] == ticket_id and r.json()["audit"] is None
    # A device with no open ticket: a new one, 201.
    r = api.post("/api/v1/tickets", {**report, "device_id": "elev-6"})
    assert r.status_code == 201 and r.json()["joined"] is False and r.json()["id"] != ticket_id
    # The reverse: that device's alarm joins the report.
    assert _raise(service, "elev-6") == r.json()["id"]


def test_each_ticket_says_whether_it_is_overdue_and_for_what(api: Api, service: Any) -> None:
    late = api.post(
        "/api/v1/tickets", {"site": "s1", "title": "Corridor light out", "location": "3F east"}
    ).json()
    fresh = api.post("/api/v1/tickets", {"site": "s1", "title": "Door squeaks", "location": "1F"}).json()
    assert (late["overdue"], late["overdue_for"], late["ack_from"]) == (False, [], None)
    assert datetime.fromisoformat(late["resolve_due"]) - datetime.fromisoformat(
        late["opened_at"]
    ) == timedelta(hours=72)
    with service.db.session() as s:
        ticket = s.get(Ticket, late["id"])
        ticket.response_due = datetime.now(UTC) - timedelta(minutes=1)
        ticket.resolve_due = datetime.now(UTC) - timedelta(seconds=1)
    t = api.get(f"/api/v1/tickets/{late['id']}").json()
    assert t["overdue"] is True and t["overdue_for"] == ["response", "resolve"]
    assert [x["id"] for x in api.get("/api/v1/tickets", params={"overdue": "true"}).json()] == [late["id"]]
    assert api.post(f"/api/v1/tickets/{late['id']}/acknowledge").json()["overdue_for"] == ["resolve"]
    assert [x["id"] for x in api.get("/api/v1/tickets", params={"overdue": "true"}).json()] == [late["id"]]
    assert api.get(f"/api/v1/tickets/{fresh['id']}").json()["overdue"] is False
