"""The compose stack's broker config (deploy/mosquitto) on the real mosquitto: TLS, logins, client ids, ACL.

Runs without Docker: deploy/mosquitto is copied into a temporary folder, where the test rewrites
only the listeners' ports and the folders of mosquitto.conf; the password files are written by
the stack's own make-passwords.sh (the real mosquitto_passwd), the certificates made by
deploy/make-ca.sh and put in place by copy-certs.sh, and the ACL file is kept as shipped.
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from collector.inbox import Inbox
from ground.settings import Settings
from tests.conftest import RunningCollector, make_settings, wait_until
from tests.deploy.stack import DEPLOY, DEVICE, SERVICE, SITE_01, SITE_02, StackMosquitto
from tests.servers import make_ca

pytestmark = pytest.mark.services


class Client:
    """A paho client over TLS that logs in (or not) and records what it receives."""

    def __init__(
        self,
        port: int,
        account: tuple[str, str] | None,
        name: str,
        ca: Path,
        *,
        persistent: bool = False,
    ) -> None:
        # MQTT 3.1.1 for a persistent session (clean_session=False), as the collector has one.
        if persistent:
            self.client = mqtt.Client(
                CallbackAPIVersion.VERSION2, client_id=name, protocol=mqtt.MQTTv311, clean_session=False
            )
        else:
            self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=name, protocol=mqtt.MQTTv5)
        self.client.tls_set(ca_certs=str(ca), cert_reqs=ssl.CERT_REQUIRED)
        if account:
            self.client.username_pw_set(*account)
        self.received: list[str] = []
        self.answered = threading.Event()
        self.refused = False
        self.session_present = False
        self.client.on_connect = self._on_connect
        self.client.on_message = lambda _c, _u, msg: self.received.append(msg.topic)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self.answered.wait(10), f"{name}: no answer from the broker"

    def _on_connect(self, _c: mqtt.Client, _u: object, flags: object, reason: object, _p: object) -> None:
        self.refused = bool(getattr(reason, "is_failure", False))
        self.session_present = bool(getattr(flags, "session_present", False))
        self.answered.set()

    def subscribe(self, topic: str) -> None:
        """Subscribe at QoS 1 and wait for the broker's answer."""
        done = threading.Event()
        self.client.on_subscribe = lambda *_a: done.set()
        self.client.subscribe(topic, qos=1)
        assert done.wait(10)

    def wait_for(self, topic: str) -> None:
        """Wait until `topic` has arrived."""
        deadline = time.monotonic() + 10
        while topic not in self.received:
            assert time.monotonic() < deadline, f"{topic} never arrived; got {self.received}"
            time.sleep(0.02)

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()


def publish(port: int, account: tuple[str, str], topic: str, ca: Path) -> None:
    """Publish one QoS 1 message on a connection of its own, and wait until the broker has answered.

    mosquitto 2.0.11 closes the connection of a client that published where it may not (after a
    PUBACK with reason 135), so each message gets a fresh connection.
    """
    sender = Client(port, account, f"sender-{account[0]}", ca)
    assert not sender.refused, f"{account[0]} was refused"
    info = sender.client.publish(topic, b"{}", qos=1)
    deadline = time.monotonic() + 10
    while not info.is_published() and sender.client.is_connected():
        assert time.monotonic() < deadline, f"no answer to {topic}"
        time.sleep(0.01)
    sender.close()


def test_anonymous_and_wrong_password_are_refused(broker: StackMosquitto, certs: Path) -> None:
    ca = certs / "ca.crt"
    for port in (broker.port, broker.service_port):
        anonymous = Client(port, None, "anonymous", ca)
        wrong = Client(port, (SITE_01[0], "wrong"), "wrong-password", ca)
        assert anonymous.refused
        assert wrong.refused
        anonymous.close()
        wrong.close()


def test_each_account_logs_in_on_its_own_listener_only(broker: StackMosquitto, certs: Path) -> None:
    ca = certs / "ca.crt"
    site_on_service_port = Client(broker.service_port, SITE_01, "site-01-gw", ca)
    service_on_devices_port = Client(broker.port, SERVICE, "facility-collector", ca)
    site = Client(broker.port, SITE_01, "site-01-gw", ca)
    service = Client(broker.service_port, SERVICE, "facility-collector", ca)
    assert site_on_service_port.refused and service_on_devices_port.refused
    assert not site.refused and not service.refused
    for client in (site_on_service_port, service_on_devices_port, site, service):
        client.close()


def test_the_broker_speaks_only_tls_with_its_certificate(broker: StackMosquitto, tmp_path: Path) -> None:
    other = make_ca(tmp_path / "other-ca")
    for port in (broker.port, broker.service_port):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            context = ssl.create_default_context(cafile=str(other / "ca.crt"))
            with pytest.raises(ssl.SSLCertVerificationError):
                context.wrap_socket(raw, server_hostname="127.0.0.1")
    plain = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="plain", protocol=mqtt.MQTTv311)
    plain.username_pw_set(*SITE_01)
    answered = threading.Event()
    plain.on_connect = lambda *_a: answered.set()
    plain.connect("127.0.0.1", broker.port)  # TCP is accepted; MQTT without TLS is never answered
    plain.loop_start()
    assert not answered.wait(2)
    plain.disconnect()
    plain.loop_stop()


def test_a_site_account_cannot_take_the_collectors_session(broker: StackMosquitto, certs: Path) -> None:
    """A device using the collector's client id neither disconnects it nor gets its queued messages."""
    ca = certs / "ca.crt"
    collector = Client(broker.service_port, SERVICE, "facility-collector", ca, persistent=True)
    alarms = Client(broker.service_port, SERVICE, "facility-collector-alarms", ca, persistent=True)
    collector.subscribe("facility/v1/#")
    dropped = threading.Event()
    collector.client.on_disconnect = lambda *_a: dropped.set()

    intruders = [
        Client(broker.port, SITE_01, "facility-collector", ca, persistent=True),
        Client(broker.port, DEVICE, "facility-collector-alarms", ca, persistent=True),
        Client(broker.service_port, SITE_02, "facility-collector", ca, persistent=True),
    ]
    # On the devices' port the connection is the account's own (no session of the collector's);
    # on the service's port a site account does not exist.
    assert [i.refused for i in intruders] == [False, False, True]
    assert not any(i.session_present for i in intruders)
    publish(broker.port, SITE_02, "facility/v1/site-02/sump_pit/sump-1/status", ca)
    collector.wait_for("facility/v1/site-02/sump_pit/sump-1/status")
    assert not dropped.wait(1.5)
    assert collector.client.is_connected() and alarms.client.is_connected()
    assert "already connected" not in broker.log.read_text()
    for client in (*intruders, collector, alarms):
        client.close()


def test_a_site_account_publishes_only_under_its_own_site(broker: StackMosquitto, certs: Path) -> None:
    ca = certs / "ca.crt"
    service = Client(broker.service_port, SERVICE, "service", ca)
    service.subscribe("facility/v1/#")
    assert not service.refused

    own = "facility/v1/site-01/elevator/elev-1/telemetry"
    other_site = "facility/v1/site-02/elevator/elev-1/telemetry"
    fake_alarm = "facility/v1/site-01/alarms/elev-1"
    for topic in (other_site, fake_alarm, own):
        publish(broker.port, SITE_01, topic, ca)
    publish(broker.port, SITE_02, "facility/v1/site-02/sump_pit/sump-1/status", ca)
    # Each publish was answered before the next was sent: once the allowed last ones are in, the
    # refused ones would have been too.
    service.wait_for(own)
    service.wait_for("facility/v1/site-02/sump_pit/sump-1/status")
    assert other_site not in service.received
    assert fake_alarm not in service.received
    service.close()


def test_a_device_account_publishes_only_its_own_topics(broker: StackMosquitto, certs: Path) -> None:
    ca = certs / "ca.crt"
    service = Client(broker.service_port, SERVICE, "service", ca)
    service.subscribe("facility/v1/#")
    own = "facility/v1/site-02/sump_pit/sump-7/telemetry"
    refused = [
        "facility/v1/site-02/sump_pit/sump-8/telemetry",  # another device of its site
        "facility/v1/site-01/sump_pit/sump-7/telemetry",  # another site
        "facility/v1/site-02/alarms/sump-7",
    ]
    for topic in (*refused, own, own.replace("telemetry", "event"), own.replace("telemetry", "status")):
        publish(broker.port, DEVICE, topic, ca)
    service.wait_for(own.replace("telemetry", "status"))
    assert set(service.received) == {
        own,
        own.replace("telemetry", "event"),
        own.replace("telemetry", "status"),
    }
    service.close()


def test_topics_the_contract_does_not_know_reach_the_collector_as_counted_dead_letters(
    broker: StackMosquitto,
    certs: Path,
    tmp_path: Path,
    run_collector: Callable[[Settings], RunningCollector],
) -> None:
    """Anything else under facility/ is rejected as unknown and counted (contract), not lost at the broker."""
    ca = certs / "ca.crt"
    url = f"mqtts://{SERVICE[0]}:{SERVICE[1]}@127.0.0.1:{broker.service_port}"
    running = run_collector(make_settings(tmp_path, mqtt_url=url, mqtt_ca_file=ca))
    unknown = {
        SITE_01: [
            "facility/v1/site-01/elevator/elev-1/config",  # a kind the contract lacks
            "facility/v1/site-01/elevator",  # too few levels
            "facility/v1/site-01/elevator/elev-1/telemetry/extra",  # too many
            "facility/v2/site-01/elevator/elev-1/telemetry",  # another version
        ],
        DEVICE: [
            "facility/v1/site-02/sump_pit/sump-7/diagnostics",
            "facility/v1/site-02/sump_pit/sump-7/telemetry/x/y",
        ],
    }
    refused = {
        SITE_01: ["facility/v1/site-02/elevator/elev-1/config", "facility/v1/site-01/alarms/elev-1"],
        DEVICE: ["facility/v1/site-02/sump_pit/sump-8/diagnostics", "facility/v1/site-02/alarms/sump-7"],
    }
    for account in (SITE_01, DEVICE):
        for topic in (*refused[account], *unknown[account]):
            publish(broker.port, account, topic, ca)
    expected = sorted(t for topics in unknown.values() for t in topics)
    wait_until(lambda: running.collector.dead_letters == len(expected), 15, "every unknown topic counted")
    inbox = Inbox(running.settings.inbox_path)
    try:
        letters = inbox.dead_letters(100)
    finally:
        inbox.close()
    assert sorted(str(d["topic"]) for d in letters) == expected
    assert all(str(d["reason"]).startswith("topic") for d in letters), letters
    # Each was answered before the next was sent: the refused ones never came.
    assert running.collector.received == len(expected)


def test_the_service_reads_everything_and_publishes_only_alarm_topics(
    broker: StackMosquitto, certs: Path
) -> None:
    ca = certs / "ca.crt"
    service = Client(broker.service_port, SERVICE, "service", ca)
    service.subscribe("facility/v1/#")
    # site-01's one connection (its gateway) reads; a second would take this one's place.
    site_01 = Client(broker.port, SITE_01, "site-01-gateway", ca)
    site_01.subscribe("facility/v1/#")  # granted, but the ACL lets through only its own alarm topics

    publish(broker.port, SITE_02, "facility/v1/site-02/fire_panel/fp-1/event", ca)
    forged = "facility/v1/site-01/fire_panel/fp-1/telemetry"
    publish(broker.service_port, SERVICE, forged, ca)
    publish(broker.service_port, SERVICE, "facility/v1/site-02/alarms/fp-9", ca)
    publish(broker.service_port, SERVICE, "facility/v1/site-01/alarms/fp-1", ca)

    service.wait_for("facility/v1/site-02/fire_panel/fp-1/event")
    service.wait_for("facility/v1/site-01/alarms/fp-1")
    site_01.wait_for("facility/v1/site-01/alarms/fp-1")
    assert forged not in service.received
    assert site_01.received == ["facility/v1/site-01/alarms/fp-1"]
    service.close()
    site_01.close()


def test_account_names_that_could_be_the_services_client_ids_are_refused(tmp_path: Path) -> None:
    if shutil.which("mosquitto_passwd") is None:
        pytest.skip("mosquitto_passwd is not installed")
    base = {
        **os.environ,
        "MQTT_SERVICE_PASSWORD": "s",
        "MQTT_SIMULATOR_SITE": "site-01",
        "MQTT_SIMULATOR_PASSWORD": "p",
    }
    script = ["sh", str(DEPLOY / "make-passwords.sh"), str(tmp_path)]
    for bad in ("facility-collector", "facility-collector-alarms", "facility", "Site-01", "site-01/x", "a b"):
        result = subprocess.run(script, env={**base, "MQTT_SITE_ACCOUNTS": f"{bad}:pw"}, capture_output=True)
        assert result.returncode != 0, bad
    result = subprocess.run(
        script, env={**base, "MQTT_SIMULATOR_SITE": "facility-collector"}, capture_output=True
    )
    assert result.returncode != 0
    ok = subprocess.run(script, env={**base, "MQTT_SITE_ACCOUNTS": "site-02:a site-02/elevator/elev-1:b"})
    assert ok.returncode == 0
    names = [line.split(":")[0] for line in (tmp_path / "passwd-sites").read_text().splitlines()]
    assert names == ["site-01", "site-02", "site-02/elevator/elev-1"]
    assert [line.split(":")[0] for line in (tmp_path / "passwd-service").read_text().splitlines()] == [
        "facility.service"
    ]
