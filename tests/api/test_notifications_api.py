"""The notifications API over real HTTP: the outbox by state, /metrics, and the recipients an admin sets."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from facility.service import Service
from tests.api.test_accounts_api import add_user, new_ticket, token_of
from tests.conftest import ADMIN_TOKEN, Api, make_settings, wait_until
from tests.servers import Mosquitto
from tests.webhook_receiver import Receiver

pytestmark = pytest.mark.services


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook receiver that refuses everything."""
    hook = Receiver(fail_first=10**9)
    yield hook
    hook.close()


@pytest.fixture
def served(tmp_path: Path, mosquitto: Mosquitto, receiver: Receiver) -> Iterator[tuple[Service, Api]]:
    """The service with the receiver as its catch-all webhook, giving up after a second."""
    settings = make_settings(
        tmp_path,
        mqtt_url=mosquitto.url,
        admin_token=ADMIN_TOKEN,
        webhook_url=receiver.url("all"),
        outbox_backoff_s=0.05,
        outbox_backoff_max_s=0.1,
        outbox_give_up_s=1.0,
    )
    service = Service(settings)
    service.start()
    api = Api(service.app())
    yield service, api
    api.close()
    service.stop()


def _metrics(api: Api) -> dict[str, float]:
    text: str = api.get("/metrics").text
    return {name: float(value) for name, value in (line.rsplit(" ", 1) for line in text.splitlines())}


def test_a_given_up_delivery_shows_in_the_api_and_the_metrics(
    served: tuple[Service, Api], receiver: Receiver
) -> None:
    _, api = served
    ticket = new_ticket(api, "s1", "water on the floor")
    wait_until(
        lambda: api.get("/api/v1/notifications?state=failed").json() != [], what="the delivery given up"
    )
    [failed] = api.get("/api/v1/notifications", params={"state": "failed"}).json()
    assert (failed["ticket_id"], failed["role"], failed["url"]) == (
        ticket["id"],
        "webhook",
        receiver.url("all"),
    )
    assert failed["last_error"] == "answered 503" and failed["attempts"] >= 2
    assert failed["given_up_at"] is not None and failed["next_attempt_at"] is None
    assert failed["payload"]["idempotency_key"] == failed["idempotency_key"]
    assert api.get("/api/v1/notifications", params={"state": "pending"}).json() == []
    assert api.get("/api/v1/notifications", params={"state": "delivered"}).json() == []
    metrics = _metrics(api)
    assert metrics['facility_notifications{state="failed"}'] == 1
    assert metrics['facility_notifications{state="pending"}'] == 0
    assert metrics["facility_notifications_given_up_total"] == 1
    assert metrics["facility_notification_attempts_failed_total"] == failed["attempts"]
    assert metrics["facility_notifications_oldest_pending_seconds"] == 0


RECIPIENTS: dict[str, Any] = {
    "version": 1,
    "sites": {
        "s1": {"duty_engineer": [{"name": "S1 engineer", "url": "http://127.0.0.1:9/s1-eng", "user": "lee"}]},
        "*": {"leadership": [{"name": "Director", "url": "http://127.0.0.1:9/director"}]},
    },
}


def test_an_admin_sets_the_recipients_and_the_next_ticket_reaches_them(
    served: tuple[Service, Api], tmp_path: Path
) -> None:
    _, api = served
    assert api.get("/api/v1/notifications/recipients").json() == {"version": 1, "sites": {}}
    # The user named must exist.
    r = api.http.put("/api/v1/notifications/recipients", json=RECIPIENTS, headers=api.admin)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == [
        "body",
        "sites",
        "s1",
        "duty_engineer",
        0,
        "user",
    ]
    add_user(api, "lee", "engineer", ("s1",))
    engineer = token_of(api, "kim", "engineer")
    r = api.http.put(
        "/api/v1/notifications/recipients", json=RECIPIENTS, headers={"Authorization": f"Bearer {engineer}"}
    )
    assert r.status_code == 403
    bad = {"version": 1, "sites": {"s1": {"duty_manager": [{"name": "M", "url": "mailto:m@example.com"}]}}}
    r = api.http.put("/api/v1/notifications/recipients", json=bad, headers=api.admin)
    assert r.status_code == 422
    assert (
        r.json()["detail"][0]["msg"]
        == "sites.s1.duty_manager[0].url: 'mailto:m@example.com' is not an http(s):// URL"
    )

    r = api.http.put("/api/v1/notifications/recipients", json=RECIPIENTS, headers=api.admin)
    assert r.status_code == 200, r.text
    assert api.get("/api/v1/notifications/recipients").json() == RECIPIENTS
    assert (tmp_path / "data" / "recipients.yaml").exists()  # a restart reads it again
    ticket = new_ticket(api, "s1", "lift stuck", severity="emergency")
    told = api.get("/api/v1/notifications", params={"ticket_id": ticket["id"]}).json()
    assert sorted((n["recipient"], n["role"]) for n in told) == [
        ("Director", "leadership"),
        ("FACILITY_WEBHOOK_URL", "webhook"),
        ("S1 engineer", "duty_engineer"),
    ]
    assert told[0]["payload"]["recipient"]["name"] == told[0]["recipient"]


def test_a_manager_sees_the_notifications_of_their_sites_only(served: tuple[Service, Api]) -> None:
    _, api = served
    new_ticket(api, "s1", "leak in s1")
    other = new_ticket(api, "s2", "leak in s2")
    manager = token_of(api, "mia", "manager", ("s2",))
    seen = api.get("/api/v1/notifications", token=manager).json()
    assert {n["ticket_id"] for n in seen} == {other["id"]}
    assert api.get("/api/v1/notifications", token=token_of(api, "eli", "engineer")).status_code == 403
