"""A worker's subscriptions: its sites only; the sites it gave up unsubscribed from its session."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from collector.subscriptions import EARLIER, SubscriptionMemory
from ground.settings import Settings
from tests.conftest import Publisher, RunningCollector, make_settings, wait_until
from tests.servers import Mosquitto


def reading(site: str, seq: int) -> tuple[str, dict[str, object]]:
    return f"facility/v1/{site}/water_tank/tank-1/telemetry", {"seq": seq, "metrics": {"level_pct": 50.0}}


def test_memory_starts_from_the_filters_of_earlier_versions_and_keeps_what_it_is_told(tmp_path: Path) -> None:
    memory = SubscriptionMemory(tmp_path / "subscriptions.json")
    assert memory.held() == EARLIER
    memory.remember(["facility/v1/s01/#"])
    assert memory.held() == EARLIER | {"facility/v1/s01/#"}
    (tmp_path / "subscriptions.json").write_text("not json")
    assert memory.held() == EARLIER


def test_a_worker_gets_only_its_sites_and_stops_getting_a_site_it_gave_up(
    tmp_path: Path,
    mosquitto: Mosquitto,
    publisher: Publisher,
    run_collector: Callable[[Settings], RunningCollector],
) -> None:
    start = run_collector
    first = start(make_settings(tmp_path, mqtt_url=mosquitto.url, sites="s01,s02"))
    publisher.publish_all([reading("s01", 0), reading("s02", 0), reading("s03", 0), reading("s02", 1)])
    wait_until(lambda: first.collector.accepted == 3, what="s01 and s02 readings")
    assert first.collector.received == 3  # nothing of s03 reached it
    first.stop()

    # The same worker (client id, data folder, persistent session) now serves s02 and s03.
    second = start(make_settings(tmp_path, mqtt_url=mosquitto.url, sites="s02,s03"))
    memory = tmp_path / "data" / "subscriptions.json"
    current = ["facility/v1/s02/#", "facility/v1/s03/#"]
    wait_until(lambda: json.loads(memory.read_text()) == current, what="s01 unsubscribed")
    publisher.publish_all([reading("s01", 1), reading("s03", 1), reading("s02", 2)])
    wait_until(lambda: second.collector.accepted == 2, what="s03 and s02 readings")
    assert second.collector.received == 2  # s01's reading, published first, never came
