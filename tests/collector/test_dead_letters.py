"""Dead letters: every topic under facility/ counted, retained ones once, old ones pruned."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from collector.inbox import DeadLetter, Inbox
from tests.conftest import Publisher, RunningCollector, make_settings, wait_until
from tests.servers import (
    MOSQUITTO_CONF,
    Mosquitto,
    copy_for_server,
    find_binary,
    require_services,
    server_dir,
)

pytestmark = pytest.mark.services

T0 = 1_795_749_124_000


def _letters(inbox_path: Path) -> list[dict[str, object]]:
    inbox = Inbox(inbox_path)
    try:
        return inbox.dead_letters(1000)
    finally:
        inbox.close()


def test_topics_with_too_many_or_too_few_levels_are_dead_letters_and_counted(
    tmp_path: Path, mosquitto: Mosquitto, publisher: Publisher, run_collector: Callable[..., RunningCollector]
) -> None:
    running = run_collector(make_settings(tmp_path, mqtt_url=mosquitto.url))
    reading = b'{"metrics": {"floor": 3}}'
    unknown = [
        "facility/v1/s1/elevator/telemetry",  # a level short
        "facility/v1/s1/elevator/e1/telemetry/extra",  # a level too many
        "facility/v1",
        "facility/v2/s1/elevator/e1/telemetry",
        "facility/v1/s1/elevator/e1/bogus",
    ]
    publisher.publish_all([(topic, reading) for topic in unknown])
    # The service's own alarm topic is no device's message: neither counted nor dead-lettered.
    publisher.publish_all([("facility/v1/s1/alarms/e1", b'{"device_id": "e1", "alarms": []}')])
    publisher.publish_all([("facility/v1/s1/elevator/e1/telemetry", reading)])
    c = running.collector
    wait_until(lambda: c.accepted == 1, what="the good reading after the bad topics")
    wait_until(lambda: c.dead_letters == len(unknown), what="every unknown topic counted")
    assert c.received == len(unknown) + 1
    assert sorted(str(d["topic"]) for d in _letters(running.settings.inbox_path)) == sorted(unknown)
    assert all(str(d["reason"]).startswith("topic:") for d in _letters(running.settings.inbox_path))


def test_a_retained_bad_message_is_one_dead_letter_however_often_it_is_replayed(
    tmp_path: Path, mosquitto: Mosquitto, publisher: Publisher, run_collector: Callable[..., RunningCollector]
) -> None:
    topic = "facility/v1/s1/water_pump/pump-1/status"
    publisher.client.publish(topic, b'{"state": "asleep"}', qos=1, retain=True).wait_for_publish(10)
    settings = make_settings(tmp_path, mqtt_url=mosquitto.url)
    for start in range(3):  # three starts, three subscribes: the broker replays it each time
        running = run_collector(settings)
        wait_until(lambda r=running: r.collector.received == 1, what="the retained status")  # type: ignore[misc]
        running.collector._client.reconnect()  # and a reconnect within one run: replayed again
        wait_until(lambda r=running: r.collector.received == 2, what="the replay")  # type: ignore[misc]
        running.stop()
        assert running.collector.dead_letters == (1 if start == 0 else 0)
    [letter] = _letters(settings.inbox_path)
    assert letter["topic"] == topic and str(letter["reason"]).startswith("state:")
    # A new bad message on the same topic is a new dead letter, once: live to the collector's
    # session, then replayed as retained on the next subscribe.
    publisher.client.publish(topic, b'{"state": "dozing"}', qos=1, retain=True).wait_for_publish(10)
    running = run_collector(settings)
    wait_until(lambda: running.collector.dead_letters == 1, what="the new bad message")
    running.stop()
    assert len(_letters(settings.inbox_path)) == 2


def test_dead_letters_older_than_the_setting_are_pruned(
    tmp_path: Path, mosquitto: Mosquitto, run_collector: Callable[..., RunningCollector]
) -> None:
    settings = make_settings(tmp_path, mqtt_url=mosquitto.url, dead_letter_days=30)
    now = int(time.time() * 1000)
    inbox = Inbox(settings.inbox_path)
    inbox.add_dead_letters(
        [
            DeadLetter(now - 31 * 86_400_000, "decode", "facility/v1/s1/old", "topic: old", "{}"),
            DeadLetter(now - 29 * 86_400_000, "decode", "facility/v1/s1/recent", "topic: recent", "{}"),
        ]
    )
    inbox.close()
    run_collector(settings)
    wait_until(lambda: len(_letters(settings.inbox_path)) == 1, what="the old dead letter pruned")
    assert [d["topic"] for d in _letters(settings.inbox_path)] == ["facility/v1/s1/recent"]


class NarrowAclMosquitto(Mosquitto):
    """mosquitto whose ACL lets anonymous clients read the contract's device topics only."""

    name = "mosquitto-narrow-acl"

    def command(self) -> list[str]:
        acl = self.dir / "source" / "acl"
        acl.parent.mkdir(parents=True, exist_ok=True)
        acl.write_text(
            "topic read facility/v1/+/+/+/telemetry\n"
            "topic read facility/v1/+/+/+/event\n"
            "topic read facility/v1/+/+/+/status\n"
            "topic write facility/#\n"
        )
        copy_for_server(acl.parent, self.dir / "auth", ["acl"])
        conf = self.dir / "mosquitto.conf"
        conf.write_text(MOSQUITTO_CONF.format(port=self.port) + f"acl_file {self.dir / 'auth' / 'acl'}\n")
        return [self.binary, "-c", str(conf)]


def test_a_broker_whose_acl_allows_only_the_device_topics_still_delivers_them(
    tmp_path: Path, run_collector: Callable[..., RunningCollector]
) -> None:
    binary = find_binary("mosquitto")
    if binary is None:
        if require_services():
            pytest.fail("mosquitto is not installed; FACILITY_REQUIRE_SERVICES=1 forbids skipping")
        pytest.skip("mosquitto is not installed (apt-get install mosquitto)")
    workdir = server_dir("mosquitto-narrow-acl")
    broker = NarrowAclMosquitto(binary, workdir)
    broker.start()
    publisher = Publisher(broker.url, "narrow-acl-publisher")
    try:
        running = run_collector(make_settings(tmp_path, mqtt_url=broker.url))
        publisher.publish_all([("facility/v1/s1/elevator/e1/telemetry", b'{"metrics": {"floor": 3}}')])
        wait_until(lambda: running.collector.accepted == 1, what="a reading through the device subscriptions")
    finally:
        publisher.close()
        broker.stop()
        shutil.rmtree(workdir, ignore_errors=True)
