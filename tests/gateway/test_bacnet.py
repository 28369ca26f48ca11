"""The chiller (a real BACnet/IP device on loopback) through the gateway, mosquitto and the collector."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.config import parse_config
from gateway.simulators.chiller import ChillerDevice
from ground.clock import now_ms
from tests.conftest import make_settings, wait_until
from tests.servers import free_port

pytestmark = pytest.mark.services
CHILLER = Path(__file__).resolve().parents[2] / "gateway" / "simulators" / "chiller.yaml"


def _udp_port() -> int:
    # free_port probes TCP; the same number is as good as any for UDP on loopback.
    return free_port()


@pytest.fixture
def chiller() -> Iterator[ChillerDevice]:
    device = ChillerDevice(_udp_port())
    device.start()
    yield device
    device.stop()


def _values(store: Any, field: str) -> list[Any]:
    return [v for _t, v in store.query("chiller", field, 0, now_ms() + 60_000, device_id="chiller-1")]


def test_chiller_values_arrive_a_trip_is_reported_and_silence_is_offline(
    tmp_path, mosquitto, watcher, chiller, start_gateway, run_collector
):
    doc = yaml.safe_load(CHILLER.read_text())
    doc["bacnet"][0].update(
        address=f"127.0.0.1:{chiller.port}", poll_s=0.2, timeout_s=0.5, bind=f"127.0.0.1/32:{_udp_port()}"
    )
    running = run_collector(make_settings(tmp_path, mqtt_url=mosquitto.url))
    chiller.pin("supply", 6.5)
    start_gateway(parse_config(doc), mosquitto.url)
    wait_until(lambda: 6.5 in _values(running.store, "supply_temp_c"), 20, "the supply temperature")
    assert 5 < _values(running.store, "return_temp_c")[-1] < 20
    assert _values(running.store, "running")[-1]
    assert not _values(running.store, "tripped")[-1]
    chiller.pin("tripped", True)
    wait_until(lambda: bool(_values(running.store, "tripped")[-1]), 20, "the trip")
    status = "facility/v1/s01/chiller/chiller-1/status"
    wait_until(lambda: watcher.state(status) == "online", 20, "online")
    chiller.stop()
    wait_until(lambda: watcher.state(status) == "offline", 20, "offline once it stops answering")


def test_a_change_of_value_arrives_long_before_the_next_poll(
    tmp_path, mosquitto, chiller, start_gateway, run_collector
):
    doc = yaml.safe_load(CHILLER.read_text())
    # A poll a minute: only the subscription can bring the trip within seconds.
    doc["bacnet"][0].update(
        address=f"127.0.0.1:{chiller.port}", poll_s=60, timeout_s=0.5, bind=f"127.0.0.1/32:{_udp_port()}"
    )
    running = run_collector(make_settings(tmp_path, mqtt_url=mosquitto.url))
    start_gateway(parse_config(doc), mosquitto.url)
    wait_until(lambda: bool(_values(running.store, "tripped")), 20, "the first poll")
    assert not _values(running.store, "tripped")[-1]
    chiller.pin("tripped", True)
    wait_until(lambda: bool(_values(running.store, "tripped")[-1]), 15, "the trip, by change of value")
