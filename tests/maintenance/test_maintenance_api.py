"""Maintenance end to end: the API over real HTTP, telemetry through real mosquitto and the collector,
a restarted service on the same data folder, site limits."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from facility.service import Service
from tests.api.test_accounts_api import token_of
from tests.conftest import ADMIN_TOKEN, Api, Publisher, make_settings, wait_until
from tests.servers import Mosquitto

pytestmark = pytest.mark.services

SITE = "s1"
M = "/api/v1/maintenance"
PLAN_ITEMS = ["brakes", "door operator", "ropes"]


def send(api: Api, method: str, path: str, body: Any = None, token: str = ADMIN_TOKEN) -> Any:
    """Any method with a JSON body and a bearer token."""
    return api.http.request(method, path, json=body, headers={"Authorization": f"Bearer {token}"})


def device(api: Api, device_id: str, device_type: str, site: str = SITE) -> None:
    """Register a device."""
    body = {"site": site, "device_id": device_id, "device_type": device_type, "building": "Tower A"}
    assert api.post("/api/v1/devices", body).status_code == 201


def contractor(
    api: Api, cid: str = "c-01", expires: date = date(2029, 12, 31), types: tuple[str, ...] = ("elevator",)
) -> Any:
    """Enter a contractor."""
    body = {
        "id": cid,
        "name": "Harbour Lift Engineering",
        "licence_number": "TS3110-0187",
        "licence_expires": expires.isoformat(),
        "equipment_types": list(types),
    }
    return api.post(f"{M}/contractors", body)


def add_plan(api: Api, token: str = ADMIN_TOKEN, **fields: Any) -> Any:
    """Enter a plan; the fields given replace the defaults."""
    body = {"site": SITE, "name": "Lift monthly service", "items": PLAN_ITEMS, **fields}
    return send(api, "POST", f"{M}/plans", body, token)


def work_orders(api: Api, token: str = ADMIN_TOKEN) -> list[dict[str, Any]]:
    """The work orders of the tickets the caller sees, oldest first."""
    tickets = api.get("/api/v1/tickets", token=token, params={"source": "maintenance"}).json()
    orders = [api.get(f"{M}/work-orders/{t['id']}", token=token) for t in reversed(tickets)]
    return [o.json() for o in orders if o.status_code == 200]


def telemetry(device_type: str, device_id: str, ts: datetime, seq: int, **metrics: Any) -> tuple[str, Any]:
    """A telemetry message of a device of the test site."""
    topic = f"facility/v1/{SITE}/{device_type}/{device_id}/telemetry"
    return topic, {"ts": int(ts.timestamp() * 1000), "seq": seq, "metrics": metrics}


def test_a_counter_plan_opens_a_work_order_from_run_count_published_over_mqtt(
    api: Api, publisher: Publisher
) -> None:
    device(api, "elev-1", "elevator")
    device(api, "elev-2", "elevator")
    assert contractor(api).status_code == 201
    r = add_plan(
        api,
        device_ids=["elev-1"],
        every="P1M",
        first_due="2030-12-01T00:00:00Z",
        lead_days=3,
        counter={"metric": "run_count", "every": 50},
        contractor="c-01",
    )
    assert r.status_code == 201, r.text
    created = r.json()
    assert (created["counter"], created["contractor"], created["every"]) == (
        {"metric": "run_count", "every": 50.0},
        "c-01",
        "P1M",
    )
    t0 = datetime.now(UTC) - timedelta(minutes=1)
    counts = [(0, 120_000), (1, 120_030), (2, 120_049)]
    publisher.publish_all(
        [telemetry("elevator", "elev-1", t0 + timedelta(seconds=s), s, run_count=c) for s, c in counts]
    )
    # The other lift counts far more, and is not covered; a marker after both says all was handled.
    publisher.publish_all(
        [
            telemetry("elevator", "elev-2", t0, 0, run_count=1),
            telemetry("elevator", "elev-2", t0 + timedelta(seconds=1), 1, run_count=900_000),
            telemetry("elevator", "elev-1", t0 + timedelta(seconds=3), 3, moving=True),
        ]
    )
    wait_until(
        lambda: api.get("/api/v1/devices/s1/elev-1").json()["latest"].get("moving") is True, what="marker"
    )
    assert work_orders(api) == []
    publisher.publish_all([telemetry("elevator", "elev-1", t0 + timedelta(seconds=4), 4, run_count=120_050)])
    wait_until(lambda: len(work_orders(api)) == 1, what="the counter's work order")
    [order] = work_orders(api)
    assert (order["device_id"], order["trigger"], order["device_type"]) == ("elev-1", "counter", "elevator")
    assert [e["item"] for e in order["checklist"]] == PLAN_ITEMS and order["unmarked"] == PLAN_ITEMS
    ticket = api.get(f"/api/v1/tickets/{order['ticket_id']}").json()
    assert (ticket["source"], ticket["class"], ticket["status"]) == ("maintenance", "routine", "open")


def test_running_hours_from_a_pumps_running_flag_open_a_work_order(api: Api, publisher: Publisher) -> None:
    device(api, "pump-1", "water_pump")
    r = add_plan(
        api, name="Pump service", device_type="water_pump", running_hours={"metric": "running", "every": 0.01}
    )
    assert r.status_code == 201, r.text
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=2)
    publisher.publish_all(
        [
            telemetry("water_pump", "pump-1", t0, 0, running=True, outlet_pressure_mpa=0.4),
            telemetry("water_pump", "pump-1", t0 + timedelta(seconds=20), 1, outlet_pressure_mpa=0.41),
            telemetry("water_pump", "pump-1", t0 + timedelta(seconds=30), 2, running=False),
            telemetry("water_pump", "pump-1", t0 + timedelta(seconds=90), 3, running=True),
        ]
    )
    wait_until(
        lambda: api.get("/api/v1/devices/s1/pump-1").json()["latest"].get("running") is True, what="pump"
    )
    assert work_orders(api) == []  # 30 s of the 36 counted
    publisher.publish_all([telemetry("water_pump", "pump-1", t0 + timedelta(seconds=96), 4, running=True)])
    wait_until(lambda: len(work_orders(api)) == 1, what="the running hours' work order")
    [order] = work_orders(api)
    assert order["trigger"] == "running_hours"
    assert datetime.fromisoformat(order["due_at"]) == t0 + timedelta(seconds=96)  # the reading's own time


def test_a_work_order_resolves_only_with_every_item_marked_and_is_then_on_record(api: Api) -> None:
    device(api, "pump-1", "water_pump")
    r = add_plan(api, name="Pump service", device_ids=["pump-1"], every="P1M", responsible="eng-1")
    assert r.status_code == 201, r.text
    [order] = work_orders(api)  # due when entered: it opens at once
    ticket_id = order["ticket_id"]
    url = f"/api/v1/tickets/{ticket_id}"
    for action in ("acknowledge", "start"):
        assert api.post(f"{url}/{action}").status_code == 200
    refused = api.post(f"{url}/resolve")
    assert refused.status_code == 409
    assert "brakes, door operator, ropes" in refused.json()["detail"]
    checklist = f"{M}/work-orders/{ticket_id}/checklist"
    no_note = send(
        api, "PUT", checklist, {"items": [{"item": "brakes", "done": True}, {"item": "ropes", "done": False}]}
    )
    assert no_note.status_code == 422
    assert no_note.json()["detail"][0]["loc"] == ["body", "items", 1, "note"]
    assert "ropes" in no_note.json()["detail"][0]["msg"]
    unknown = send(api, "PUT", checklist, {"items": [{"item": "bolts", "done": True}]})
    assert unknown.status_code == 422 and unknown.json()["detail"][0]["loc"] == ["body", "items", 0, "item"]
    marked = send(
        api,
        "PUT",
        checklist,
        {
            "items": [
                {"item": "brakes", "done": True},
                {"item": "ropes", "done": False, "note": "worn, replacement ordered"},
            ]
        },
    )
    assert marked.status_code == 200 and marked.json()["unmarked"] == ["door operator"]
    still = api.post(f"{url}/resolve")
    assert (
        still.status_code == 409
        and "door operator" in still.json()["detail"]
        and "brakes" not in still.json()["detail"]
    )
    assert (
        send(api, "PUT", checklist, {"items": [{"item": "door operator", "done": True}]}).status_code == 200
    )
    resolved = api.post(f"{url}/resolve")
    assert resolved.status_code == 200, resolved.text
    done = api.get(f"{M}/work-orders/{ticket_id}").json()
    assert done["done_by"] == "admin" and done["done_at"] == resolved.json()["resolved_at"]
    [record] = api.get(f"{M}/records", params={"site": SITE, "device_id": "pump-1"}).json()
    assert (record["plan"], record["on_plan"], record["done_by"]) == ("Pump service", True, "admin")
    assert record["checklist"][2] == {"item": "ropes", "done": False, "note": "worn, replacement ordered"}
    assert api.get(f"{M}/records", params={"device_id": "pump-2"}).json() == []
    figures = api.get(f"{M}/figures", params={"site": SITE}).json()
    assert figures["rates"] == [
        {
            "site": SITE,
            "device_type": "water_pump",
            "due": 1,
            "on_plan": 1,
            "late": 0,
            "not_done": 0,
            "rate": 1.0,
        }
    ]
    assert send(api, "PUT", checklist, {"items": [{"item": "ropes", "done": True}]}).status_code == 409
    assert send(api, "DELETE", f"{M}/plans/{r.json()['id']}").status_code == 409


def test_plans_for_lifts_need_a_licensed_contractor_and_an_expiring_licence_opens_one_ticket(
    api: Api,
) -> None:
    device(api, "elev-1", "elevator")
    refused = add_plan(api, device_type="elevator", every="P15D")
    assert refused.status_code == 422 and refused.json()["detail"][0]["loc"] == ["body", "contractor"]
    assert contractor(api, "c-fire", types=("fire_pump",)).status_code == 201
    not_covered = add_plan(api, device_ids=["elev-1"], every="P15D", contractor="c-fire")
    assert not_covered.status_code == 422 and "does not cover elevator" in not_covered.text
    soon = (datetime.now(UTC) + timedelta(days=10)).date()
    assert contractor(api, "c-01", expires=soon).status_code == 201
    assert contractor(api, "c-01").status_code == 409
    assert add_plan(api, device_type="elevator", every="P15D", contractor="c-01").status_code == 201
    licence = [
        t
        for t in api.get("/api/v1/tickets", params={"source": "maintenance"}).json()
        if "Licence" in t["title"]
    ]
    assert [(t["title"], t["site"], t["class"]) for t in licence] == [
        (f"Licence of contractor Harbour Lift Engineering expires on {soon.isoformat()}", "*", "routine")
    ]
    again = {
        "name": "Harbour Lift Engineering",
        "licence_number": "TS-2",
        "licence_expires": soon.isoformat(),
        "equipment_types": ["elevator"],
    }
    assert send(api, "PUT", f"{M}/contractors/c-01", again).status_code == 200
    narrowed = {**again, "equipment_types": ["fire_pump"]}
    assert send(api, "PUT", f"{M}/contractors/c-01", narrowed).status_code == 422
    assert send(api, "DELETE", f"{M}/contractors/c-01").status_code == 409
    assert send(api, "DELETE", f"{M}/contractors/c-fire").status_code == 204
    assert api.get(f"{M}/contractors/c-fire").status_code == 404
    tickets = api.get("/api/v1/tickets", params={"source": "maintenance"}).json()
    assert len([t for t in tickets if "Licence" in t["title"]]) == 1


def test_a_user_limited_to_a_site_sees_and_changes_only_its_maintenance(api: Api) -> None:
    for site in ("s1", "s2"):
        device(api, "pump-1", "water_pump", site)
        assert (
            add_plan(api, site=site, name=f"Pumps {site}", device_ids=["pump-1"], every="P1M").status_code
            == 201
        )
    manager = token_of(api, "mia", "manager", ("s1",))
    engineer = token_of(api, "eli", "engineer", ("s1",))
    plans = api.get(f"{M}/plans", token=manager).json()
    assert [p["site"] for p in plans] == ["s1"]
    other = next(p for p in api.get(f"{M}/plans").json() if p["site"] == "s2")
    assert api.get(f"{M}/plans/{other['id']}", token=manager).status_code == 404
    assert (
        add_plan(api, manager, site="s2", name="Mine?", device_ids=["pump-1"], every="P1M").status_code == 403
    )
    assert add_plan(api, engineer, name="Mine?", device_ids=["pump-1"], every="P1M").status_code == 403
    assert add_plan(api, manager, name="Mine", device_ids=["pump-1"], every="P1Y").status_code == 201
    moved = {"site": "s2", "name": "Moved", "items": ["x"], "device_ids": ["pump-1"], "every": "P1M"}
    assert send(api, "PUT", f"{M}/plans/{plans[0]['id']}", moved, manager).status_code == 403
    assert send(api, "DELETE", f"{M}/plans/{other['id']}", token=manager).status_code == 404
    orders = work_orders(api, engineer)
    assert {o["site"] for o in orders} == {"s1"} and len(orders) == 2
    hidden = next(o for o in work_orders(api) if o["site"] == "s2")
    assert api.get(f"{M}/work-orders/{hidden['ticket_id']}", token=engineer).status_code == 404
    mark = {"items": [{"item": "brakes", "done": True}]}
    assert (
        send(api, "PUT", f"{M}/work-orders/{hidden['ticket_id']}/checklist", mark, engineer).status_code
        == 404
    )
    figures = api.get(f"{M}/figures", token=engineer).json()["rates"]
    assert {r["site"] for r in figures} == {"s1"}
    assert api.get(f"{M}/figures", token=engineer, params={"site": "s2"}).json()["rates"] == []
    assert contractor(api, "c-9").status_code == 201
    assert api.get(f"{M}/contractors", token=engineer).json()[0]["id"] == "c-9"
    assert contractor_as(api, manager).status_code == 403


def contractor_as(api: Api, token: str) -> Any:
    """A site-limited manager entering a contractor."""
    body = {
        "id": "c-x",
        "name": "X",
        "licence_number": "1",
        "licence_expires": "2029-01-01",
        "equipment_types": ["elevator"],
    }
    return send(api, "POST", f"{M}/contractors", body, token)


@pytest.fixture
def restartable(tmp_path: Path, mosquitto: Mosquitto) -> Iterator[Callable[[], tuple[Service, Api]]]:
    """Starts the service on the test's data folder; each start stops the one before."""
    running: list[tuple[Service, Api]] = []

    def start() -> tuple[Service, Api]:
        if running:
            svc, api = running.pop()
            api.close()
            svc.stop()
        svc = Service(make_settings(tmp_path, mqtt_url=mosquitto.url, admin_token=ADMIN_TOKEN))
        svc.start()
        assert svc.wait_ready(15)
        running.append((svc, Api(svc.app())))
        return running[-1]

    yield start
    for svc, api in running:
        api.close()
        svc.stop()


def test_no_work_order_twice_across_a_restart_and_use_counted_on(
    restartable: Callable[[], tuple[Service, Api]], publisher: Publisher
) -> None:
    svc, api = restartable()
    device(api, "elev-1", "elevator")
    assert contractor(api).status_code == 201
    lifts = add_plan(
        api,
        device_ids=["elev-1"],
        every="P15D",
        counter={"metric": "run_count", "every": 100},
        contractor="c-01",
    )
    assert lifts.status_code == 201, lifts.text
    assert len(work_orders(api)) == 1  # due when entered
    t0 = datetime.now(UTC) - timedelta(minutes=1)
    publisher.publish_all(
        [
            telemetry("elevator", "elev-1", t0, 0, run_count=500),
            telemetry("elevator", "elev-1", t0 + timedelta(seconds=1), 1, run_count=560),
        ]
    )
    wait_until(
        lambda: api.get("/api/v1/devices/s1/elev-1").json()["latest"].get("run_count") == 560, what="counts"
    )
    svc, api = restartable()
    assert svc.maintenance.open_due() == 0
    assert len(work_orders(api)) == 1
    publisher.publish_all([telemetry("elevator", "elev-1", t0 + timedelta(seconds=2), 2, run_count=600)])
    wait_until(lambda: len(work_orders(api)) == 2, what="the count kept across the restart")
    assert [o["trigger"] for o in work_orders(api)] == ["calendar", "counter"]
    svc, api = restartable()
    svc.maintenance.open_due()
    assert len(work_orders(api)) == 2
