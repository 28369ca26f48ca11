"""The compose stack's broker config (deploy/mosquitto) on the real mosquitto: logins and its ACL.

Runs without Docker: the test rewrites only the listener, persistence and file paths of
mosquitto.conf for a free loopback port and a temporary folder, builds the password file with
the stack's own make-passwords.sh (the real mosquitto_passwd), and keeps the ACL file as shipped.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.conftest import _binary
from tests.servers import Mosquitto, require_services

pytestmark = pytest.mark.services

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto"
SERVICE = ("facility.service", "service-secret")
SITE_01 = ("site-01", "site-01-secret")
SITE_02 = ("site-02", "site-02-secret")


class StackMosquitto(Mosquitto):
    """mosquitto with deploy/mosquitto/mosquitto.conf, its paths moved into a temporary folder."""

    def command(self) -> list[str]:
        conf = (DEPLOY / "mosquitto.conf").read_text()
        replacements = {
            r"^listener .*$": f"listener {self.port} 127.0.0.1",
            r"^persistence_location .*$": f"persistence_location {self.dir}/data/",
            r"^password_file .*$": f"password_file {self.dir / 'passwd'}",
            r"^acl_file .*$": f"acl_file {DEPLOY / 'acl'}",
            r"^log_dest .*$": "log_dest stderr",
        }
        for pattern, line in replacements.items():
            conf, count = re.subn(pattern, line, conf, flags=re.MULTILINE)
            assert count == 1, f"mosquitto.conf has no single line matching {pattern}"
        (self.dir / "data").mkdir(exist_ok=True)
        path = self.dir / "mosquitto.conf"
        path.write_text(conf)
        return [self.binary, "-c", str(path)]


@pytest.fixture
def broker() -> Iterator[StackMosquitto]:
    """The stack's broker config on a free port, with accounts made by make-passwords.sh."""
    mosquitto = _binary("mosquitto")
    if shutil.which("mosquitto_passwd") is None:
        message = "mosquitto_passwd is not installed (apt-get install mosquitto)"
        if require_services():
            pytest.fail(message)
        pytest.skip(message)
    # As root, mosquitto drops to its own user, which cannot enter pytest's private folders.
    workdir = Path(tempfile.mkdtemp(prefix="facility-mosquitto-"))
    if os.geteuid() == 0 and _has_user("mosquitto"):
        shutil.chown(workdir, "mosquitto")
    server = StackMosquitto(mosquitto, workdir)
    env = {
        **os.environ,
        "MQTT_SERVICE_PASSWORD": SERVICE[1],
        "MQTT_SIMULATOR_SITE": SITE_01[0],
        "MQTT_SIMULATOR_PASSWORD": SITE_01[1],
        "MQTT_SITE_ACCOUNTS": f"{SITE_02[0]}:{SITE_02[1]}",
    }
    subprocess.run(["sh", str(DEPLOY / "make-passwords.sh"), str(server.dir / "passwd")], env=env, check=True)
    server.start()
    yield server
    server.stop()
    shutil.rmtree(workdir, ignore_errors=True)


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


class Client:
    """A paho client that logs in (or not) and records what it receives."""

    def __init__(self, port: int, account: tuple[str, str] | None, name: str) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=name, protocol=mqtt.MQTTv5)
        if account:
            self.client.username_pw_set(*account)
        self.received: list[str] = []
        self.answered = threading.Event()
        self.refused = False
        self.client.on_connect = self._on_connect
        self.client.on_message = lambda _c, _u, msg: self.received.append(msg.topic)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self.answered.wait(10), f"{name}: no answer from the broker"

    def _on_connect(self, _c: mqtt.Client, _u: object, _f: object, reason: object, _p: object) -> None:
        self.refused = bool(getattr(reason, "is_failure", False))
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


def publish(port: int, account: tuple[str, str], topic: str) -> None:
    """Publish one QoS 1 message on a connection of its own, and wait until the broker has answered.

    mosquitto 2.0.11 closes the connection of a client that published where it may not (after a
    PUBACK with reason 135), so each message gets a fresh connection.
    """
    sender = Client(port, account, f"sender-{account[0]}")
    info = sender.client.publish(topic, b"{}", qos=1)
    deadline = time.monotonic() + 10
    while not info.is_published() and sender.client.is_connected():
        assert time.monotonic() < deadline, f"no answer to {topic}"
        time.sleep(0.01)
    sender.close()


def test_anonymous_and_wrong_password_are_refused(broker: StackMosquitto) -> None:
    anonymous = Client(broker.port, None, "anonymous")
    wrong = Client(broker.port, (SITE_01[0], "wrong"), "wrong-password")
    assert anonymous.refused
    assert wrong.refused
    anonymous.close()
    wrong.close()


def test_a_site_account_publishes_only_under_its_own_site(broker: StackMosquitto) -> None:
    service = Client(broker.port, SERVICE, "service")
    service.subscribe("facility/v1/#")
    assert not service.refused

    own = "facility/v1/site-01/elevator/elev-1/telemetry"
    other_site = "facility/v1/site-02/elevator/elev-1/telemetry"
    fake_alarm = "facility/v1/site-01/alarms/elev-1"
    for topic in (other_site, fake_alarm, own):
        publish(broker.port, SITE_01, topic)
    publish(broker.port, SITE_02, "facility/v1/site-02/sump_pit/sump-1/status")
    # Each publish was answered before the next was sent: once the allowed last ones are in, the
    # refused ones would have been too.
    service.wait_for(own)
    service.wait_for("facility/v1/site-02/sump_pit/sump-1/status")
    assert other_site not in service.received
    assert fake_alarm not in service.received
    service.close()


def test_the_service_reads_everything_and_publishes_only_alarm_topics(broker: StackMosquitto) -> None:
    service = Client(broker.port, SERVICE, "service")
    service.subscribe("facility/v1/#")
    site_01 = Client(broker.port, SITE_01, "site-01-panel")
    site_01.subscribe("facility/v1/#")  # granted, but the ACL lets through only its own alarm topics

    publish(broker.port, SITE_01, "facility/v1/site-01/fire_panel/fp-1/event")
    forged = "facility/v1/site-01/fire_panel/fp-1/telemetry"
    publish(broker.port, SERVICE, forged)
    publish(broker.port, SERVICE, "facility/v1/site-02/alarms/fp-9")
    publish(broker.port, SERVICE, "facility/v1/site-01/alarms/fp-1")

    service.wait_for("facility/v1/site-01/fire_panel/fp-1/event")
    service.wait_for("facility/v1/site-01/alarms/fp-1")
    site_01.wait_for("facility/v1/site-01/alarms/fp-1")
    assert forged not in service.received
    assert site_01.received == ["facility/v1/site-01/alarms/fp-1"]
    service.close()
    site_01.close()
