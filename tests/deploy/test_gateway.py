"""The simulated site's path in the stack: simulators → gateway broker → bridge → central broker → collector.

Every part is real and configured as shipped: the central broker with deploy/mosquitto, the
gateway with deploy/gateway (its bridge written by make-bridge.sh), the simulators' publisher,
and the collector logging in as the service over TLS with the service's client id.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from ground.settings import MqttEndpoint, Settings
from simulators import publisher
from simulators.devices import build_fleet
from tests.conftest import RunningCollector, _binary, make_settings, wait_until
from tests.deploy.stack import SERVICE, SITE_01, GatewayMosquitto, StackMosquitto
from tests.servers import server_dir

pytestmark = pytest.mark.services


@pytest.fixture
def gateway(broker: StackMosquitto, certs: Path) -> Iterator[GatewayMosquitto]:
    """site-01's gateway broker, bridged to the stack's broker as the account site-01."""
    workdir = server_dir("gateway")
    server = GatewayMosquitto(_binary("mosquitto"), workdir, broker, SITE_01, certs / "ca.crt")
    server.start()
    yield server
    server.stop()
    shutil.rmtree(workdir, ignore_errors=True)


def service_settings(tmp_path: Path, broker: StackMosquitto, certs: Path) -> Settings:
    """The service's settings in the stack: its account, its client id, the service listener, TLS."""
    user, password = SERVICE
    return make_settings(
        tmp_path,
        mqtt_url=f"mqtts://{user}:{password}@127.0.0.1:{broker.service_port}",
        mqtt_ca_file=certs / "ca.crt",
        mqtt_client_id="facility-collector",
    )


def test_the_simulated_site_reaches_the_collector_through_its_gateway(
    tmp_path: Path,
    broker: StackMosquitto,
    gateway: GatewayMosquitto,
    certs: Path,
    run_collector: Callable[[Settings], RunningCollector],
) -> None:
    running = run_collector(service_settings(tmp_path, broker, certs))
    wait_until(lambda: bridge_up(broker), 15, "the bridge")
    plan = publisher.SimulationPlan(sites=1, rate=40.0, duration_s=3.0, seed=7)
    sent = publisher.run(MqttEndpoint(gateway.url), plan, threading.Event())
    devices = len(build_fleet(1, 7))
    assert sent >= devices  # a first full report of every device
    # With every device's "online" status, published on connecting, and "offline" at the end.
    expected = sent + 2 * devices
    wait_until(lambda: running.collector.accepted >= expected, 20, f"{expected} messages at the collector")
    stored = running.store.query("status", "state", 0, 2**62, site="site-01")
    assert stored, "no status of site-01 stored"
    assert "already connected" not in broker.log.read_text()


def test_the_sites_alarm_topics_come_down_to_its_gateway(
    broker: StackMosquitto, gateway: GatewayMosquitto, certs: Path
) -> None:
    wait_until(lambda: bridge_up(broker), 15, "the bridge")
    received: list[str] = []
    panel = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="site-01-panel", protocol=mqtt.MQTTv311)
    subscribed = threading.Event()
    panel.on_message = lambda _c, _u, msg: received.append(msg.topic)
    panel.on_subscribe = lambda *_a: subscribed.set()
    panel.on_connect = lambda c, *_a: c.subscribe("facility/v1/#", qos=1)
    panel.connect("127.0.0.1", gateway.port)
    panel.loop_start()
    assert subscribed.wait(10)

    service = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="facility-collector-alarms")
    service.tls_set(ca_certs=str(certs / "ca.crt"))
    service.username_pw_set(*SERVICE)
    service.connect("127.0.0.1", broker.service_port)
    service.loop_start()
    service.publish("facility/v1/site-02/alarms/elev-9", b"{}", qos=1).wait_for_publish(10)
    service.publish("facility/v1/site-01/alarms/elev-1", b"{}", qos=1).wait_for_publish(10)
    wait_until(lambda: "facility/v1/site-01/alarms/elev-1" in received, 10, "site-01's alarm at its gateway")
    assert received == ["facility/v1/site-01/alarms/elev-1"]  # not another site's
    for client in (service, panel):
        client.disconnect()
        client.loop_stop()


def bridge_up(broker: StackMosquitto) -> bool:
    """True once the gateway's bridge has logged in to the central broker (as site-01)."""
    return "as site-01" in broker.log.read_text()
