"""The simulated stream, and `facility simulate` publishing it through a real broker."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from collector.inbox import Inbox
from ground.contract import MAX_TS_MS, Kind, decode
from simulators.devices import build_fleet
from simulators.stream import messages
from tests.conftest import RunningCollector, make_settings, wait_until
from tests.servers import Mosquitto

START = 1_795_749_124_000


def _first(n: int, seed: int, sites: int = 1) -> list[tuple[str, bytes]]:
    stream = messages(build_fleet(sites, seed), seed, START, rate=20.0)
    return [(m.topic, m.payload) for m in itertools.islice(stream, n)]


def test_same_seed_same_messages_other_seed_other_messages() -> None:
    assert _first(2000, seed=3) == _first(2000, seed=3)
    assert _first(2000, seed=3) != _first(2000, seed=4)


def test_every_message_keeps_the_contract_with_increasing_seq_per_device() -> None:
    last_seq: dict[str, int] = {}
    kinds = set()
    for topic, payload in _first(5000, seed=1, sites=2):
        m = decode(topic, payload, 0, skew_ms=MAX_TS_MS)  # the payload is checked, not its clock
        kinds.add(m.kind)
        key = f"{m.site}/{m.device_id}"
        assert m.seq == last_seq.get(key, -1) + 1
        last_seq[key] = m.seq
    assert Kind.TELEMETRY in kinds
    assert {k.split("/")[0] for k in last_seq} == {"site-01", "site-02"}


@pytest.mark.services
def test_simulate_command_publishes_through_the_broker_with_nothing_lost(
    tmp_path: Path, mosquitto: Mosquitto, run_collector: Callable[..., RunningCollector]
) -> None:
    running = run_collector(make_settings(tmp_path, mqtt_url=mosquitto.url))
    env = {**os.environ, "FACILITY_MQTT_URL": mosquitto.url, "FACILITY_DATA_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "facility", "simulate", "--duration", "3", "--rate", "200", "--seed", "5"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    sent = int(result.stderr.rsplit("simulator sent ", 1)[1].split()[0])
    devices = len(build_fleet(1, 5))
    # Telemetry and events, plus each device's retained status: online at start, offline at the end.
    wait_until(lambda: running.collector.received == sent + 2 * devices, what="every message received")
    c = running.collector
    assert c.dead_letters == 0 and c.tracker.lost == 0 and c.tracker.duplicates == 0
    assert len(c.tracker.devices) == devices
    wait_until(lambda: Inbox(running.settings.inbox_path).pending_count() == 0, what="all stored")
    states = running.store.query("status", "state", 0, 2**62)
    assert sorted({v for _, v in states}) == ["offline", "online"]
