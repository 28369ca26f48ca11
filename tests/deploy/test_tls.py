"""The collector over mqtts:// on a real mosquitto, with certificates made by deploy/make-ca.sh."""

from __future__ import annotations

import shutil
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from collector.app import Collector
from collector.stores.factory import open_store
from ground.settings import Settings
from tests.conftest import RunningCollector, _binary, make_settings, wait_until
from tests.servers import TlsMosquitto, make_ca, server_dir

pytestmark = pytest.mark.services

TOPIC = "facility/v1/site-01/water_tank/tank-1/telemetry"


@pytest.fixture
def tls_broker(certs: Path) -> Iterator[TlsMosquitto]:
    """mosquitto with only a TLS listener, the broker certificate of `certs`."""
    workdir = server_dir("mosquitto-tls")
    server = TlsMosquitto(_binary("mosquitto"), workdir, certs)
    server.start()
    yield server
    server.stop()
    shutil.rmtree(workdir, ignore_errors=True)


def publish_over_tls(broker: TlsMosquitto, ca: Path) -> None:
    """One reading at QoS 1, waited for."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="tank-1", protocol=mqtt.MQTTv311)
    client.tls_set(ca_certs=str(ca), cert_reqs=ssl.CERT_REQUIRED)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    payload = f'{{"ts": {int(time.time() * 1000)}, "seq": 1, "metrics": {{"level_pct": 71.5}}}}'
    client.publish(TOPIC, payload, qos=1).wait_for_publish(10)
    client.disconnect()
    client.loop_stop()


def test_the_collector_connects_over_tls_and_stores_a_message(
    tmp_path: Path,
    tls_broker: TlsMosquitto,
    certs: Path,
    run_collector: Callable[[Settings], RunningCollector],
) -> None:
    settings = make_settings(tmp_path, mqtt_url=tls_broker.url, mqtt_ca_file=certs / "ca.crt")
    assert settings.mqtt.tls and settings.mqtt.port == tls_broker.port
    running = run_collector(settings)  # fails unless it connected and subscribed
    publish_over_tls(tls_broker, certs / "ca.crt")

    def stored() -> list[object]:
        return list(running.store.query("water_tank", "level_pct", 0, 2**62, device_id="tank-1"))

    wait_until(lambda: bool(stored()), 15, "the reading in the store")
    assert [row[1] for row in stored()] == [71.5]  # type: ignore[index]


# paho leaves the socket of a failed TLS handshake to the garbage collector, which warns.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_collector_that_does_not_trust_the_brokers_ca_does_not_connect(
    tmp_path: Path, tls_broker: TlsMosquitto, certs: Path
) -> None:
    other = make_ca(tmp_path / "other-ca")
    settings = make_settings(tmp_path, mqtt_url=tls_broker.url, mqtt_ca_file=other / "ca.crt")
    store = open_store(settings)
    collector = Collector(settings, store)
    stop = threading.Event()
    thread = threading.Thread(target=collector.run, args=(stop,))
    thread.start()
    try:
        publish_over_tls(tls_broker, certs / "ca.crt")
        assert not collector.connected.wait(3)
        assert collector.received == 0
    finally:
        stop.set()
        thread.join(30)
        store.close()
    assert f"as {settings.mqtt_client_id} " not in tls_broker.log.read_text()
