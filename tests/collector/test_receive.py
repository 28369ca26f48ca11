"""The collector's receive path through a real broker: packets cut across reads, QoS 0, retained."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from collector.inbox import Inbox
from tests.conftest import Publisher, RunningCollector, make_settings, wait_until
from tests.servers import Mosquitto

pytestmark = pytest.mark.services

T0 = 1_795_749_124_000
TOPIC = "facility/v1/s1/water_tank/tank-{}/telemetry"


def _reading(device: int, seq: int) -> bytes:
    return json.dumps({"ts": T0 + seq, "seq": seq, "metrics": {"level_pct": 50.0 + seq % 7}}).encode()


def test_a_payload_of_many_reads_among_small_ones_is_taken_whole_and_every_reading_kept(
    tmp_path: Path, mosquitto: Mosquitto, publisher: Publisher, run_collector: Callable[..., RunningCollector]
) -> None:
    running = run_collector(make_settings(tmp_path, mqtt_url=mosquitto.url))
    # 300,000 bytes span five reads of 64 KiB; the readings around it end and start mid-read.
    huge = b'{"metrics": {"level_pct": 50.0}, "pad": "' + b"x" * 299_950 + b'"}'
    small = [(TOPIC.format(d), _reading(d, s)) for s in range(1, 301) for d in range(5)]
    publisher.publish_all([*small[:700], (TOPIC.format(9), huge), *small[700:]])
    # QoS 0 comes without a message id, and a retained reading with its flag.
    publisher.client.publish(TOPIC.format(7), _reading(7, 1), qos=0).wait_for_publish(10)
    publisher.client.publish(TOPIC.format(8), _reading(8, 1), qos=1, retain=True).wait_for_publish(10)

    c = running.collector
    wait_until(lambda: c.accepted == len(small) + 2, what="every reading accepted")
    wait_until(lambda: c.dead_letters == 1, what="the oversized payload set aside")
    inbox = Inbox(running.settings.inbox_path)
    try:
        [letter] = inbox.dead_letters()
        assert letter["reason"] == f"payload: {len(huge)} bytes, over the 65536 limit"
        assert letter["topic"] == TOPIC.format(9)
    finally:
        inbox.close()
    assert c.received == len(small) + 3
    assert c.tracker.lost == 0 and c.tracker.duplicates == 0
