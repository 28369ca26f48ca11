"""The one-process service: escalation and notification timers, alarm topics, restarts, and its commands."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy.exc import OperationalError

from facility.pipeline import load_engine_state
from facility.service import Service
from records.db import Database
from records.models import EngineState
from records.states import CauseClass
from tests.conftest import ADMIN_TOKEN, Publisher, make_settings, wait_until
from tests.servers import Mosquitto, free_port
from tickets.lifecycle import Action
from tickets.service import ActionFields, TicketFilter

pytestmark = pytest.mark.services

T0 = 1_795_749_124_000


class Webhook:
    """A real HTTP server on loopback that keeps what is POSTed to it."""

    def __init__(self) -> None:
        received: list[dict[str, Any]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.received = received
        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def reasons(self, ticket_id: int) -> list[str]:
        """The reasons notified for one ticket, in order."""
        return [r["reason"] for r in self.received if r["ticket_id"] == ticket_id]


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    """A webhook receiver."""
    hook = Webhook()
    yield hook
    hook.server.shutdown()
    hook.server.server_close()


def _start(tmp_path: Path, mosquitto: Mosquitto, **overrides: Any) -> Service:
    service = Service(make_settings(tmp_path, mqtt_url=mosquitto.url, admin_token=ADMIN_TOKEN, **overrides))
    service.start()
    assert service.wait_ready(15)
    return service


def _sos(seq: int) -> tuple[str, dict[str, Any]]:
    return (
        "facility/v1/s1/patrol_reader/reader-1/event",
        {"ts": T0 + seq * 1000, "seq": seq, "code": "SOS", "detail": {"guard": "g-0012"}},
    )


def test_unacknowledged_emergency_is_renotified_and_escalated_until_acknowledged(
    tmp_path: Path, mosquitto: Mosquitto, publisher: Publisher, webhook: Webhook
) -> None:
    service = _start(
        tmp_path,
        mosquitto,
        webhook_url=webhook.url,
        renotify_s=1,
        escalate_emergency_s=2,
        escalate_major_s=60,
    )
    try:
        publisher.publish_all([_sos(0)])
        wait_until(lambda: len(service.tickets.list(TicketFilter())) == 1, what="the SOS ticket")
        [ticket] = service.tickets.list(TicketFilter())
        wait_until(lambda: "escalated" in webhook.reasons(ticket.id), timeout_s=10, what="escalation")
        reasons = webhook.reasons(ticket.id)
        assert reasons[0] == "opened" and reasons.count("re-notify") >= 1
        t = service.tickets.get(ticket.id)
        assert t.escalation_level == 1 and t.notified_count >= 1
        assert webhook.received[0]["class"] == "emergency" and webhook.received[0]["site"] == "s1"
        service.tickets.act(ticket.id, Action.ACKNOWLEDGE, ActionFields(), "eng")
        # Once the timers' thread has handled the acknowledgement, no timer is left to fire, and
        # the records count no re-notification or escalation of an acknowledged ticket.
        assert service.timer_jobs.drain()
        assert not {f"renotify-{ticket.id}", f"escalate-{ticket.id}"} & {
            j.id for j in service.scheduler.get_jobs()
        }
        t = service.tickets.get(ticket.id)
        told = 1 + t.notified_count + t.escalation_level  # opened, each re-notification, the escalation
        wait_until(lambda: len(webhook.reasons(ticket.id)) == told, what="every notification counted")
        count = len(webhook.reasons(ticket.id))
        assert service.dispatcher.drain()
        assert len(webhook.reasons(ticket.id)) == count, "notified again after the acknowledgement"
    finally:
        service.stop()


@pytest.mark.parametrize("snapshot_in_records", [False, True], ids=["current", "snapshot-in-records"])
def test_a_restart_keeps_alarms_tickets_pending_durations_and_timers(
    tmp_path: Path, mosquitto: Mosquitto, publisher: Publisher, webhook: Webhook, snapshot_in_records: bool
) -> None:
    trapped = {"occupied": True, "moving": False, "door": "closed", "in_door_zone": False, "floor": 7}
    elevator = "facility/v1/s1/elevator/elev-1/telemetry"
    breaker = "facility/v1/s1/lighting_circuit/light-1/telemetry"
    settings: dict[str, Any] = {"webhook_url": webhook.url, "escalate_major_s": 4}
    first = _start(tmp_path, mosquitto, **settings)
    publisher.publish_all(
        [
            (elevator, {"ts": T0, "seq": 0, "metrics": trapped}),
            (elevator, {"ts": T0 + 5000, "seq": 1, "metrics": trapped}),  # 5 s of the 15 s
            (breaker, {"ts": T0, "seq": 0, "metrics": {"breaker_tripped": True, "on": False}}),
        ]
    )
    wait_until(lambda: len(first.tickets.list(TicketFilter())) == 1, what="the breaker ticket")
    wait_until(lambda: first.collector.received == 3, what="all received")
    first.stop()
    if snapshot_in_records:
        _move_snapshot_to_records(tmp_path / "data")

    second = _start(tmp_path, mosquitto, **settings)
    try:
        with second.db.read() as s:
            assert s.get(EngineState, 1) is None, "the snapshot stays only in its own file"
        [breaker_ticket] = second.tickets.list(TicketFilter())
        assert breaker_ticket.rule == "breaker_tripped"
        publisher.publish_all(
            [
                (elevator, {"ts": T0 + 16_000, "seq": 2, "metrics": trapped}),
                (breaker, {"ts": T0 + 16_000, "seq": 1, "metrics": {"breaker_tripped": True}}),
            ]
        )
        wait_until(lambda: len(second.tickets.list(TicketFilter())) == 2, what="the entrapment ticket")
        alarms = {a.rule: a for a in second.tickets.alarms(active_only=True)}
        assert set(alarms) == {"entrapment", "breaker_tripped"}
        # The pending duration survived: the entrapment began at the first report, before the restart.
        assert alarms["entrapment"].raised_at.timestamp() * 1000 == T0
        assert alarms["breaker_tripped"].count == 1  # still the same alarm, not raised again
        # The major ticket's escalation timer, set before the restart, fires after it.
        wait_until(lambda: "escalated" in webhook.reasons(breaker_ticket.id), timeout_s=15, what="escalation")
    finally:
        second.stop()


def _move_snapshot_to_records(data: Path) -> None:
    """Leave the engine's snapshot as versions before `engine-state.db` did: among the records, whole."""
    own = Database(f"sqlite:///{data / 'engine-state.db'}")
    state = load_engine_state(own)
    assert state is not None
    whole = {key: value for key, value in state.items() if key != "parts"}
    saved = EngineState(id=1, saved_at=datetime.now(UTC), state={**whole, "devices": list(state["devices"])})
    own.close()
    for name in ("engine-state.db", "engine-state.db-wal", "engine-state.db-shm"):
        (data / name).unlink(missing_ok=True)
    records = Database(f"sqlite:///{data / 'records.db'}")
    with records.session() as s:
        s.add(saved)
    records.close()


@pytest.fixture
def alarm_topics(mosquitto: Mosquitto) -> Iterator[dict[str, bytes]]:
    """The last message on every device alarm topic, as a watcher subscribed to them sees it."""
    seen: dict[str, bytes] = {}
    watcher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="alarm-watcher")
    watcher.on_message = lambda _c, _u, m: seen.__setitem__(m.topic, bytes(m.payload))
    watcher.connect("127.0.0.1", mosquitto.port)
    watcher.subscribe("facility/v1/+/alarms/#", qos=1)
    watcher.loop_start()
    yield seen
    watcher.disconnect()
    watcher.loop_stop()


def test_active_alarms_are_retained_on_the_devices_alarm_topic(
    tmp_path: Path, mosquitto: Mosquitto, publisher: Publisher, alarm_topics: dict[str, bytes]
) -> None:
    service = _start(tmp_path, mosquitto)
    seen = alarm_topics
    try:
        topic = "facility/v1/s1/chiller/chiller-1/telemetry"
        publisher.publish_all([(topic, {"ts": T0, "seq": 0, "metrics": {"tripped": True}})])
        wait_until(lambda: bool(seen.get("facility/v1/s1/alarms/chiller-1")), what="the alarm topic")
        doc = json.loads(seen["facility/v1/s1/alarms/chiller-1"])
        assert [(a["rule"], a["class"]) for a in doc["alarms"]] == [("chiller_trip", "major")]
        publisher.publish_all([(topic, {"ts": T0 + 1000, "seq": 1, "metrics": {"tripped": False}})])
        wait_until(lambda: seen.get("facility/v1/s1/alarms/chiller-1") == b"", what="the alarm cleared")
    finally:
        service.stop()


def test_an_inventory_file_registers_devices_at_start_up(tmp_path: Path, mosquitto: Mosquitto) -> None:
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(
        "- {site: s1, device_id: elev-3, device_type: elevator, name: Elevator 3, building: Building B,"
        " floor: B1, interval_s: 10}\n"
    )
    service = _start(tmp_path, mosquitto, inventory_file=inventory)
    try:
        device = service.devices.get("s1", "elev-3")
        assert device is not None and device.registered and device.label() == "Elevator 3, Building B"
    finally:
        service.stop()


def test_rules_check_command(tmp_path: Path) -> None:
    good = subprocess.run(
        [sys.executable, "-m", "facility", "rules", "check", "rules/default_rules.yaml"],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert good.returncode == 0 and good.stdout.strip().endswith(": ok")
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "version: 1\nrules:\n"
        "  - {id: x, device_type: elevator, when: 'speed > 1', class: major}\n"
        "  - {id: x, device_type: toaster, event: BOOM, class: loud}\n"
    )
    out = subprocess.run(
        [sys.executable, "-m", "facility", "rules", "check", str(bad)], capture_output=True, text=True
    )
    assert out.returncode == 1
    assert "rule 'x', field 'when'" in out.stderr and "speed" in out.stderr
    assert "toaster" in out.stderr and "class" in out.stderr


def test_serve_command_answers_on_http(tmp_path: Path, mosquitto: Mosquitto) -> None:
    port = free_port()
    env = {
        **os.environ,
        "FACILITY_MQTT_URL": mosquitto.url,
        "FACILITY_DATA_DIR": str(tmp_path / "data"),
        "FACILITY_ADMIN_TOKEN": ADMIN_TOKEN,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "facility", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"

        def up() -> bool:
            try:
                return bool(httpx.get(f"{url}/health").json().get("mqtt_connected") == 1.0)
            except httpx.HTTPError:
                return False

        wait_until(up, timeout_s=60, what="serve")
        r = httpx.get(f"{url}/api/v1/tickets", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        assert r.status_code == 200 and r.json() == []
        assert httpx.get(f"{url}/api/v1/tickets").status_code == 401
    finally:
        proc.terminate()
        assert proc.wait(30) == 0


def test_an_alarm_the_database_refused_is_recorded_on_the_next_try(
    tmp_path: Path, mosquitto: Mosquitto, publisher: Publisher, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = _start(tmp_path, mosquitto)
    try:
        real = service.tickets.apply_alarm
        # What SQLAlchemy raises when SQLite's file stays locked past the busy timeout.
        locked = sqlite3.OperationalError("database is locked")
        failures = [OperationalError("INSERT INTO alarms …", None, locked)]

        def flaky(event: Any, **options: Any) -> int | None:
            if failures:
                raise failures.pop()
            return real(event, **options)

        monkeypatch.setattr(service.tickets, "apply_alarm", flaky)
        publisher.publish_all(
            [
                (
                    "facility/v1/s1/fire_panel/fp-1/event",
                    {"ts": T0, "seq": 0, "code": "FIRE_ALARM", "state": "raised"},
                )
            ]
        )
        wait_until(lambda: len(service.tickets.list(TicketFilter())) == 1, what="the fire alarm ticket")
        assert not failures
        [a] = service.tickets.alarms(active_only=True)
        assert a.rule == "fire_alarm"
    finally:
        service.stop()


def test_resolving_a_latched_alarm_clears_the_devices_alarm_topic(
    tmp_path: Path, mosquitto: Mosquitto, publisher: Publisher, alarm_topics: dict[str, bytes]
) -> None:
    service = _start(tmp_path, mosquitto)
    seen = alarm_topics
    try:
        publisher.publish_all(
            [("facility/v1/s1/elevator/elev-9/event", {"ts": T0, "seq": 0, "code": "ALARM_BUTTON"})]
        )
        topic = "facility/v1/s1/alarms/elev-9"
        wait_until(lambda: bool(seen.get(topic)), what="the alarm topic")
        [ticket] = service.tickets.list(TicketFilter())
        for action, fields in [
            (Action.ACKNOWLEDGE, ActionFields()),
            (Action.START, ActionFields()),
            (
                Action.RESOLVE,
                ActionFields(
                    cause="passenger pressed by mistake",
                    measures="spoke on the intercom",
                    result="no one trapped",
                    emergency_plan_started=True,
                    leadership_informed=True,
                    temporary_measures="none needed",
                    cause_class=CauseClass.EXTERNAL,
                ),
            ),
        ]:
            service.tickets.act(ticket.id, action, fields, "eng")
        wait_until(lambda: seen.get(topic) == b"", what="the alarm topic cleared")
        assert service.tickets.alarms(active_only=True) == []
        assert service.engine.active() == []
    finally:
        service.stop()


def test_a_second_service_in_the_process_is_refused_while_the_first_runs(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    """The persisted timers find the running service by its process: two would run each other's jobs."""
    first = _start(tmp_path / "first", mosquitto)
    second = Service(make_settings(tmp_path / "second", mqtt_url=mosquitto.url, admin_token=ADMIN_TOKEN))
    try:
        with pytest.raises(RuntimeError, match="another service"):
            second.start()
        assert first.collector.connected.is_set(), "the first goes on"
    finally:
        second.stop()  # never started: it releases what it opened
        first.stop()
