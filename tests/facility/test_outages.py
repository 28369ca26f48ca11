"""Outages through the real pipeline: a thousand silent devices are one incident, a fire alarm is its own."""

from __future__ import annotations

import json
from typing import Any

from facility.pipeline import OFFLINE_RUN
from ground.clock import now_ms
from ground.contract import decode, decode_gateway_status
from ground.severity import Severity
from records.devices import DeviceDirectory
from tests.conftest import Api, FedPipeline, Publisher, wait_until
from tickets.lifecycle import Status
from tickets.service import TicketFilter

DEVICES = 1000
# Water tanks and lighting are routine when silent; elevators are major (default rules, class_by_type).
TYPES = ("water_tank", "lighting_circuit", "elevator")
MINUTE = 60_000


def _fleet(n: int) -> list[tuple[str, str]]:
    return [(TYPES[i % len(TYPES)], f"d{i:04d}") for i in range(n)]


def _status(device_type: str, device_id: str, state: str, at: int, site: str = "s1") -> Any:
    payload = json.dumps({"ts": at, "state": state}).encode()
    return decode(f"facility/v1/{site}/{device_type}/{device_id}/status", payload, at)


def _report(fed: FedPipeline, fleet: list[tuple[str, str]], at: int, site: str = "s1") -> None:
    """Every device of the fleet says it is online, received at `at`: one batch, as the collector hands it."""
    fed.pipeline.handle([_status(t, d, "online", at, site) for t, d in fleet])


def _drain(fed: FedPipeline) -> None:
    """Tick at now until the offline alarms waiting are recorded (OFFLINE_RUN at a time)."""
    for _ in range(DEVICES // OFFLINE_RUN + 1):
        fed.pipeline.tick(now_ms())


def _tickets(fed: FedPipeline) -> list[Any]:
    return list(fed.tickets.list(TicketFilter(limit=10_000)))


def test_a_thousand_devices_silent_together_are_one_incident_with_a_thousand_children(
    pipeline: FedPipeline,
) -> None:
    fleet = _fleet(DEVICES)
    # Heard from now, then nothing for ten minutes: every one is past three times its interval.
    _report(pipeline, fleet, now_ms())
    later = now_ms() + 10 * MINUTE
    pipeline.pipeline.tick(later)  # records the first OFFLINE_RUN of them; the others wait
    # A fire alarm arrives while most offline alarms still wait: it goes ahead of them.
    at = now_ms()
    fire = {"ts": at, "seq": 1, "code": "FIRE_ALARM", "state": "raised", "detail": {"component": "sd-1"}}
    pipeline.deliver("facility/v1/s1/fire_panel/fp-1/event", fire, at)
    _drain(pipeline)

    tickets = _tickets(pipeline)
    assert len(tickets) == 2
    [incident] = [t for t in tickets if t.rule == "outage"]
    assert incident.rule == "outage" and incident.status is Status.OPEN
    assert incident.title == "Outage — site s1: 1,000 devices offline"
    # Its class is that of the gravest equipment in it: elevators are major when silent.
    assert incident.severity is Severity.MAJOR
    children = pipeline.tickets.alarms(True, limit=10_000, ticket_id=incident.id)
    assert len(children) == DEVICES
    assert {a.device_id for a in children} == {d for _t, d in fleet}
    assert {a.rule for a in children} == {"offline"}

    # The fire alarm during the outage is never folded in: it has a ticket of its own, emergency,
    # recorded before the offline alarms that were still waiting when it came.
    [own] = [t for t in tickets if t.id != incident.id]
    assert own.rule == "fire_alarm" and own.device_id == "fp-1" and own.severity is Severity.EMERGENCY
    [fire_alarm] = pipeline.tickets.alarms(True, ticket_id=own.id)
    assert sum(a.id > fire_alarm.id for a in children) == DEVICES - OFFLINE_RUN

    # Half come back: still open. The rest come back: it resolves itself.
    _report(pipeline, fleet[: DEVICES // 2], now_ms())
    _drain(pipeline)
    assert pipeline.tickets.get(incident.id).status is Status.OPEN
    assert len(pipeline.tickets.alarms(True, limit=10_000, ticket_id=incident.id)) == DEVICES // 2
    _report(pipeline, fleet[DEVICES // 2 :], now_ms())
    _drain(pipeline)
    done = pipeline.tickets.get(incident.id)
    assert done.status is Status.RESOLVED
    assert [e.action for e in done.audit][-1] == "resolve"
    assert len(_tickets(pipeline)) == 2  # no ticket opened for any device on the way


def test_devices_going_silent_one_by_one_fold_their_own_tickets_into_the_incident(
    pipeline: FedPipeline,
) -> None:
    fleet = _fleet(4)
    start = now_ms() - 10 * MINUTE
    # Each device falls silent in a batch of its own: the first two open tickets of their own, the
    # third makes three within the window, and those two are closed into the incident.
    for i, (device_type, device_id) in enumerate(fleet):
        pipeline.pipeline.handle([_status(device_type, device_id, "offline", start + i * 1000)])
    tickets = sorted(_tickets(pipeline), key=lambda t: t.id)
    assert [t.rule for t in tickets] == ["offline", "offline", "outage"]
    assert [t.status for t in tickets] == [Status.CLOSED, Status.CLOSED, Status.OPEN]
    incident = tickets[-1]
    assert incident.title == "Outage — site s1: 4 devices offline"
    assert len(pipeline.tickets.alarms(True, ticket_id=incident.id)) == 4


def test_two_devices_silent_keep_tickets_of_their_own_and_another_site_its_own_incident(
    pipeline: FedPipeline,
) -> None:
    start = now_ms()
    _report(pipeline, _fleet(2), start)
    _report(pipeline, _fleet(5), start, site="s2")
    pipeline.pipeline.tick(start + 10 * MINUTE)
    _drain(pipeline)
    tickets = _tickets(pipeline)
    s1 = sorted((t.rule, t.device_id) for t in tickets if t.site == "s1")
    assert s1 == [("offline", "d0000"), ("offline", "d0001")]
    [s2] = [t for t in tickets if t.site == "s2"]
    assert s2.rule == "outage" and s2.title == "Outage — site s2: 5 devices offline"


def test_a_gateway_that_says_it_is_offline_is_the_incident_its_devices_join(
    pipeline: FedPipeline,
) -> None:
    directory = DeviceDirectory(pipeline.tickets.db)
    behind = [("water_tank", "t1"), ("water_pump", "p1")]
    for device_type, device_id in behind:
        fields = {"site": "s1", "device_id": device_id, "device_type": device_type, "gateway": "gw-1"}
        directory.register(fields)
    at = now_ms()
    _report(pipeline, behind, at)
    # The gateway's will: one gateway, so no count of devices is needed for the incident.
    will = decode_gateway_status("facility/v1/s1/gateway/gw-1/status", b'{"state": "offline"}', at + 1)
    pipeline.pipeline.handle([will])
    [incident] = _tickets(pipeline)
    assert incident.rule == "outage" and incident.severity is Severity.MAJOR
    assert "Gateway gw-1 reports itself offline" in (incident.description or "")
    # Each device's own will follows: they join the incident, one at a time, no ticket each.
    for device_type, device_id in behind:
        pipeline.pipeline.handle([_status(device_type, device_id, "offline", at + 2)])
    assert [t.id for t in _tickets(pipeline)] == [incident.id]
    assert len(pipeline.tickets.alarms(True, ticket_id=incident.id)) == 3

    # Back: the gateway and then its devices; the incident resolves when the last is back.
    online = decode_gateway_status("facility/v1/s1/gateway/gw-1/status", b'{"state": "online"}', at + 3)
    pipeline.pipeline.handle([online])
    assert pipeline.tickets.get(incident.id).status is Status.OPEN
    _report(pipeline, behind, at + 4)
    assert pipeline.tickets.get(incident.id).status is Status.RESOLVED


def test_a_gateway_will_over_the_broker_opens_the_incident_and_registered_devices_join_it(
    api: Api, publisher: Publisher
) -> None:
    for device_id in ("t1", "t2"):
        device = {"site": "s1", "device_id": device_id, "device_type": "water_tank", "gateway": "gw-1"}
        created = api.post("/api/v1/devices", device)
        assert created.status_code == 201 and created.json()["gateway"] == "gw-1"
    assert api.post("/api/v1/devices", {**device, "gateway": "GW 1"}).status_code == 422
    publisher.publish_all(
        [
            ("facility/v1/s1/water_tank/t1/telemetry", {"seq": 1, "metrics": {"level_pct": 60.0}}),
            ("facility/v1/s1/gateway/gw-1/status", {"state": "offline"}),
            ("facility/v1/s1/water_tank/t1/status", {"state": "offline"}),
        ]
    )
    wait_until(lambda: len(api.get("/api/v1/alarms").json()) == 2, what="the gateway's and t1's alarms")
    [incident] = api.get("/api/v1/tickets").json()
    assert incident["rule"] == "outage" and incident["class"] == "major"
    children = api.get(f"/api/v1/alarms?ticket_id={incident['id']}").json()
    assert sorted((a["device_id"], a["rule"]) for a in children) == [
        ("gw-1", "gateway_offline"),
        ("t1", "offline"),
    ]
    # A gateway's status is no device's message, and no dead letter either.
    assert api.get("/api/v1/dead-letters").json() == []
