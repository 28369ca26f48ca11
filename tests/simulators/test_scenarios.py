"""Every shipped scenario played through a real broker into the whole service: its tickets, and no others."""

from __future__ import annotations

import json
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from ground.settings import MqttEndpoint
from simulators import scenario
from simulators.scenario import Scenario, scenario_paths
from tests.conftest import Publisher, wait_until
from tests.servers import Mosquitto
from tickets.lifecycle import Source
from tickets.service import TicketFilter

pytestmark = pytest.mark.services

SCENARIOS = scenario_paths()


def observed_tickets(service: Any, site: str) -> list[tuple[str, str, frozenset[str]]]:
    """(device, class, rules of its alarms) of every alarm ticket of the site, sorted."""
    tickets = service.tickets.list(TicketFilter(site=site, source=Source.ALARM, limit=1000))
    alarms = service.tickets.alarms(active_only=False, limit=1000)
    rows = []
    for t in tickets:
        rules = frozenset(a.rule for a in alarms if a.ticket_id == t.id)
        rows.append((t.device_id, str(t.severity), rules))
    return sorted(rows, key=lambda r: (r[0], r[1], sorted(r[2])))


def expected_tickets(s: Scenario) -> list[tuple[str, str, frozenset[str]]]:
    rows = [(t.device_id, str(t.severity), t.rules) for t in s.tickets]
    return sorted(rows, key=lambda r: (r[0], r[1], sorted(r[2])))


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_scenario_opens_exactly_its_tickets(path: Path, service: Any, mosquitto: Mosquitto) -> None:
    s = scenario.load(path)
    sent = scenario.run(MqttEndpoint(mosquitto.url), s, threading.Event())
    assert sent == len(scenario.messages(s, 0))
    wait_until(lambda: service.collector.received >= sent, 30, "the collector to receive every message")
    assert service.collector.accepted == sent, "a scenario message was dead-lettered"
    assert service.collector.tracker.lost == 0

    # The collector counts a batch just before its handlers run. A marker sent after the story (a
    # topic no device has, set aside once handled) comes after every message of it: once it is
    # counted, the handlers have seen the whole story, and a late alarm would already be there.
    expected = expected_tickets(s)
    before = service.collector.dead_letters
    marker = Publisher(mosquitto.url, "scenario-marker")
    marker.publish_all([(f"facility/v1/{s.site}/end-of-story", b"{}")])
    marker.close()
    wait_until(lambda: service.collector.dead_letters > before, 30, "the marker after the story")
    wait_until(lambda: observed_tickets(service, s.site) == expected, 5, "the story's tickets")
    assert observed_tickets(service, s.site) == expected

    tickets = {t.device_id: t for t in service.tickets.list(TicketFilter(site=s.site, limit=1000))}
    assert len(tickets) == len(s.tickets), "a device has more than one ticket"
    for want in s.tickets:
        got = tickets[want.device_id]
        assert (got.source, got.status) == ("alarm", "open")
        if want.occurrences is not None:
            assert got.occurrences == want.occurrences, f"{want.device_id}: occurrences"

    alarms = sorted(service.tickets.alarms(active_only=False, limit=1000), key=lambda a: a.id)
    for want_alarm in s.alarms:
        records = [a for a in alarms if (a.device_id, a.rule) == (want_alarm.device_id, want_alarm.rule)]
        where = f"{want_alarm.device_id}/{want_alarm.rule}"
        assert records, f"{where}: never raised"
        last = records[-1]
        assert last.ticket_id == tickets[want_alarm.device_id].id
        if want_alarm.active is not None:
            assert last.active is want_alarm.active, f"{where}: active"
        if want_alarm.raised is not None:
            assert len(records) == want_alarm.raised, f"{where}: raised {len(records)} times"
        if want_alarm.count is not None:
            assert last.count == want_alarm.count, f"{where}: count"


# The player's MQTT side.

PACED = """\
name: Paced
site: demo
duration: 2s
devices:
  - {device_type: water_tank, device_id: wt-1, report_every: 250ms, telemetry: {level_pct: 70.0}}
steps:
  - {at: 1s, device: wt-1, status: offline}
  - {at: 1500ms, device: wt-1, telemetry: {level_pct: 69.5}}
expect: {tickets: []}
"""


class Subscriber:
    """Collects what arrives on facility/#, with the retain flag."""

    def __init__(self, broker_url: str, client_id: str) -> None:
        port = int(broker_url.rsplit(":", 1)[1])
        self.received: list[tuple[str, bytes, bool]] = []
        self.subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        self.client.on_message = lambda _c, _u, m: self.received.append(
            (m.topic, bytes(m.payload), bool(m.retain))
        )
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.on_connect = lambda c, *_: c.subscribe("facility/#", qos=1)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self.subscribed.wait(10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def subscriber(mosquitto: Mosquitto) -> Iterator[Subscriber]:
    """A subscriber to every facility topic of this test's broker."""
    sub = Subscriber(mosquitto.url, "scenario-watcher")
    yield sub
    sub.close()


def test_speed_paces_device_time_and_every_message_arrives_in_order(
    tmp_path: Path, mosquitto: Mosquitto, subscriber: Subscriber
) -> None:
    path = tmp_path / "paced.yaml"
    path.write_text(textwrap.dedent(PACED), encoding="utf-8")
    s = scenario.load(path)
    began = time.monotonic()
    sent = scenario.run(MqttEndpoint(mosquitto.url), s, threading.Event(), speed=2.0, start_ms=1_000_000)
    elapsed = time.monotonic() - began
    outgoing = scenario.messages(s, 1_000_000)
    assert outgoing[-1].t_ms == 1_001_500  # offline from 1 s: the 1.5 s step is the last message
    assert 0.7 <= elapsed < 2.0  # 1.5 s of device time at 2x
    expected = [(m.topic, m.payload) for m in outgoing]
    assert sent == len(expected)
    wait_until(lambda: len(subscriber.received) >= sent, 10, "every message")
    assert [(t, p) for t, p, _ in subscriber.received] == expected
    assert json.loads(expected[0][1])["ts"] == 1_000_000


def test_status_is_published_retained(tmp_path: Path, mosquitto: Mosquitto) -> None:
    path = tmp_path / "paced.yaml"
    path.write_text(textwrap.dedent(PACED), encoding="utf-8")
    scenario.run(MqttEndpoint(mosquitto.url), scenario.load(path), threading.Event())
    late = Subscriber(mosquitto.url, "late-watcher")
    try:
        wait_until(lambda: bool(late.received), 10, "the retained status")
        [(topic, payload, retained)] = late.received
    finally:
        late.close()
    assert (topic, retained) == ("facility/v1/demo/water_tank/wt-1/status", True)
    assert json.loads(payload)["state"] == "offline"


def test_stop_ends_a_paced_play_early(tmp_path: Path, mosquitto: Mosquitto) -> None:
    path = tmp_path / "paced.yaml"
    path.write_text(textwrap.dedent(PACED), encoding="utf-8")
    s = scenario.load(path)
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    began = time.monotonic()
    sent = scenario.run(MqttEndpoint(mosquitto.url), s, stop, speed=1.0)
    assert time.monotonic() - began < 1.5
    assert 0 < sent < len(scenario.messages(s, 0))
