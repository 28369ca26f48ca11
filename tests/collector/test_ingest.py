"""End to end through real servers: publisher → mosquitto → collector → InfluxDB / victoria-metrics / SQLite.

Every test counts by `seq`: each published reading must be stored exactly once.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from collector import writer as writer_module
from collector.inbox import Inbox
from ground.contract import Message
from tests.conftest import Publisher, RunningCollector, make_settings, wait_until
from tests.servers import CollectorProcess, Influxd, Mosquitto, VictoriaMetrics

pytestmark = pytest.mark.services

SITE = "test-site"
DEVICES = ("elev-1", "elev-2", "elev-3", "elev-4")
T0 = 1_795_749_124_000


def telemetry(device: str, seq: int, **metrics: object) -> tuple[str, dict[str, object]]:
    """One elevator telemetry message with device time derived from seq."""
    body = metrics or {"floor": seq % 30, "moving": seq % 2 == 0, "door": "closed"}
    return (
        f"facility/v1/{SITE}/elevator/{device}/telemetry",
        {"ts": T0 + seq * 1000, "seq": seq, "metrics": body},
    )


def readings(count_per_device: int, start: int = 0) -> list[tuple[str, dict[str, object]]]:
    """`count_per_device` readings for each device, interleaved."""
    return [telemetry(d, s) for s in range(start, start + count_per_device) for d in DEVICES]


def influx_seqs(influxd: Influxd, measurement: str = "elevator") -> dict[str, list[int]]:
    """Every stored seq per device, in time order."""
    series = influxd.query(f'SELECT "seq" FROM "{measurement}" GROUP BY "device_id"', "facility")
    out: dict[str, list[int]] = {}
    for s in series:
        out[s["tags"]["device_id"]] = [int(v) for _, v in s["values"]]
    return out


def influx_count(influxd: Influxd) -> int:
    """Stored elevator readings."""
    series = influxd.query('SELECT count("seq") FROM "elevator"', "facility")
    return int(series[0]["values"][0][1]) if series else 0


@pytest.fixture
def v1_collector(
    tmp_path: Path,
    mosquitto: Mosquitto,
    influxd: Influxd,
    run_collector: Callable[..., RunningCollector],
) -> RunningCollector:
    """A collector in this process, on this test's mosquitto and influxd's v1 API."""
    return run_collector(
        make_settings(
            tmp_path,
            mqtt_url=mosquitto.url,
            influx_url=influxd.url,
            influx_api="v1",
            influx_database="facility",
        )
    )


@pytest.fixture
def embedded_collector(
    tmp_path: Path, mosquitto: Mosquitto, run_collector: Callable[..., RunningCollector]
) -> RunningCollector:
    """A collector in this process, on this test's mosquitto and the embedded SQLite store."""
    return run_collector(make_settings(tmp_path, mqtt_url=mosquitto.url))


def test_every_reading_stored_once_in_influxdb_v1_with_duplicates_and_bad_input(
    influxd: Influxd, publisher: Publisher, v1_collector: RunningCollector
) -> None:
    running = v1_collector
    batch = readings(500)
    publisher.publish_all(batch)
    # A redelivery of 100 readings, and bad input of every kind the contract names.
    publisher.publish_all(batch[:100])
    bad = [
        (f"facility/v1/{SITE}/elevator/elev-1/telemetry", b"not json"),
        (f"facility/v1/{SITE}/elevator/elev-1/telemetry", b'{"metrics": {"moving": "yes"}}'),
        (f"facility/v1/{SITE}/toaster/t-1/telemetry", b'{"metrics": {"x": 1}}'),
        ("facility/v1/BAD SITE/elevator/e/telemetry", b'{"metrics": {"floor": 1}}'),
        (f"facility/v1/{SITE}/elevator/elev-1/telemetry", b"{" + b" " * 70_000 + b"}"),
        # Valid JSON that no store can take: each must be refused alone, not stop the collector.
        (f"facility/v1/{SITE}/elevator/elev-1/telemetry", b'{"metrics": {"note": "\\ud800"}}'),
        (
            f"facility/v1/{SITE}/elevator/elev-1/telemetry",
            b'{"seq": 9223372036854775808, "metrics": {"floor": 1}}',
        ),
        (
            f"facility/v1/{SITE}/elevator/elev-1/telemetry",
            b'{"ts": 9223372036854775808, "metrics": {"floor": 1}}',
        ),
        (f"facility/v1/{SITE}/elevator/elev-1/telemetry", b'{"metrics": {"seq": 2}}'),
        (f"facility/v1/{SITE}/fire_panel/fp-1/event", b'{"code": "FAULT", "detail": {"x": "\\ud800"}}'),
    ]
    publisher.publish_all(bad)
    publisher.publish_all(readings(10, start=500))  # the collector is still running after all that
    wait_until(lambda: influx_count(influxd) == 510 * len(DEVICES), what="all readings stored")
    assert influx_seqs(influxd) == {d: list(range(510)) for d in DEVICES}
    c = running.collector
    wait_until(lambda: c.dead_letters == len(bad), what="dead letters")
    assert c.tracker.duplicates == 100 and c.tracker.lost == 0
    letters = Inbox(running.settings.inbox_path).dead_letters()
    reasons = sorted(letter["reason"].split(":")[0] for letter in letters)
    assert reasons == [
        "detail",
        "metrics.moving",
        "metrics.note",
        "metrics.seq",
        "payload",
        "payload",
        "seq",
        "topic",
        "topic",
        "ts",
    ]
    oversized = next(x for x in letters if "limit" in x["reason"])
    assert len(oversized["payload"]) == 1024  # kept truncated


def test_a_retained_status_without_time_is_not_stored_again_on_each_subscribe(
    tmp_path: Path, mosquitto: Mosquitto, publisher: Publisher, run_collector: Callable[..., RunningCollector]
) -> None:
    topic = "facility/v1/s1/water_pump/pump-1/status"
    publisher.client.publish(topic, b'{"state": "offline"}', qos=1, retain=True).wait_for_publish(10)
    publisher.client.publish(
        "facility/v1/s1/water_pump/pump-2/status", f'{{"ts": {T0}, "state": "online"}}', qos=1, retain=True
    ).wait_for_publish(10)
    settings = make_settings(tmp_path, mqtt_url=mosquitto.url)
    for _ in range(2):  # two starts, two subscribes: the broker replays both retained messages each time
        running = run_collector(settings)
        wait_until(lambda r=running: r.collector.received == 2, what="the retained statuses")  # type: ignore[misc]
        running.stop()
    store = running.store
    assert store.query("status", "state", 0, 2**62, device_id="pump-1") == []
    assert store.query("status", "state", 0, 2**62, device_id="pump-2") == [(T0, "online")]


@pytest.mark.usefixtures("v1_collector")
def test_events_and_status_are_stored_with_their_tags(influxd: Influxd, publisher: Publisher) -> None:
    detail = {"zone": "3F lift lobby", "component": "smoke-0031"}
    publisher.publish_all(
        [
            (
                "facility/v1/s1/fire_panel/fp-1/event",
                {"ts": T0, "seq": 1, "code": "FIRE_ALARM", "state": "raised", "detail": detail},
            ),
            ("facility/v1/s1/fire_panel/fp-1/status", {"ts": T0 + 1, "state": "offline"}),
        ]
    )

    def stored() -> bool:
        return bool(influxd.query('SELECT * FROM "status"', "facility"))

    wait_until(stored, what="status stored")
    [event] = influxd.query('SELECT * FROM "events"', "facility")
    row = dict(zip(event["columns"], event["values"][0], strict=True))
    assert row["code"] == "FIRE_ALARM" and row["device_type"] == "fire_panel"
    assert row["state"] == "raised" and row["seq"] == 1 and row["time"] == T0
    assert json.loads(row["detail"]) == detail
    [status] = influxd.query('SELECT "state" FROM "status"', "facility")
    assert status["values"] == [[T0 + 1, "offline"]]


def test_a_point_the_store_rejects_is_dead_lettered_and_the_rest_stored(
    influxd: Influxd, publisher: Publisher, v1_collector: RunningCollector
) -> None:
    running = v1_collector
    # A point the contract allows but InfluxDB refuses: a field first a number, then a string.
    publisher.publish_all([telemetry("elev-1", 0, mode=1)])
    wait_until(lambda: influx_count(influxd) == 1, what="first point")
    publisher.publish_all([telemetry("elev-1", 1, mode="eco"), *readings(20, start=2)])
    wait_until(lambda: influx_count(influxd) == 1 + 20 * len(DEVICES), what="good points")
    inbox = Inbox(running.settings.inbox_path)
    wait_until(lambda: inbox.dead_letter_count() == 1, what="the refused point dead-lettered")
    [letter] = inbox.dead_letters()
    assert letter["stage"] == "store" and "HTTP 400" in letter["reason"]
    assert 'mode="eco"' in letter["payload"]
    assert running.collector.dead_letters == 1, "a point the store refused counts in the figure too"
    wait_until(lambda: inbox.pending_count() == 0, what="stored lines removed from the buffer")


def test_influxdb_v2_write_api_through_influxdb_client(
    tmp_path: Path,
    mosquitto: Mosquitto,
    victoria_metrics: VictoriaMetrics,
    publisher: Publisher,
    run_collector: Callable[..., RunningCollector],
) -> None:
    settings = make_settings(
        tmp_path,
        mqtt_url=mosquitto.url,
        influx_url=victoria_metrics.url,
        influx_api="v2",
        influx_token="test-token",
        influx_org="facility",
        influx_bucket="facility",
    )
    running = run_collector(settings)
    batch = readings(250)
    publisher.publish_all(batch)
    publisher.publish_all(batch[:40])  # redelivered
    inbox = Inbox(settings.inbox_path)
    wait_until(lambda: running.collector.received == len(batch) + 40, what="all received")
    wait_until(lambda: inbox.pending_count() == 0, what="buffer drained")
    series = victoria_metrics.export('{__name__="elevator_seq"}')
    got = {s["metric"]["device_id"]: s for s in series}
    assert sorted(got) == sorted(DEVICES)
    for device in DEVICES:
        assert got[device]["values"] == list(range(250))
        assert got[device]["timestamps"] == [T0 + s * 1000 for s in range(250)]
        assert got[device]["metric"]["site"] == SITE


def test_embedded_sqlite_store_keeps_readings_and_answers_queries(
    publisher: Publisher, embedded_collector: RunningCollector
) -> None:
    running = embedded_collector
    batch = readings(100)
    publisher.publish_all(batch + batch[:10])
    inbox = Inbox(running.settings.inbox_path)
    wait_until(lambda: running.collector.received == 410, what="all received")
    wait_until(lambda: inbox.pending_count() == 0, what="buffer drained")
    store = running.store
    raw = store.query("elevator", "seq", T0, T0 + 1_000_000, device_id="elev-2")
    assert [v for _, v in raw] == list(range(100))
    # floor = seq % 30 at T0 + seq s; buckets of 10 s aligned on the epoch, as InfluxDB's.
    buckets: dict[int, list[int]] = {}
    for seq in range(100):
        t = T0 + seq * 1000
        buckets.setdefault(t - t % 10_000, []).append(seq % 30)
    expected = [(b, sum(v) / len(v)) for b, v in sorted(buckets.items())]
    means = store.query("elevator", "floor", T0, T0 + 100_000, device_id="elev-1", every_s=10)
    assert means == expected
    assert store.query("elevator", "floor", T0, T0 + 100_000, every_s=100, aggregate="max")[0][1] == 29


def test_the_rules_see_a_message_before_its_commit_and_the_acknowledgement_waits_for_it(
    publisher: Publisher, embedded_collector: RunningCollector
) -> None:
    running = embedded_collector
    entered, release = threading.Event(), threading.Event()

    def rules(messages: Sequence[Message]) -> None:
        entered.set()
        release.wait(10)

    def broken(messages: Sequence[Message]) -> None:
        raise RuntimeError("a handler's bug")

    running.collector.handlers += [rules, broken]
    publisher.publish(*telemetry("elev-9", 1))
    assert entered.wait(10), "the handler never saw the message"
    # The handler holds the batch: nothing of it is in the buffer yet, so nothing is acknowledged.
    inbox = Inbox(running.settings.inbox_path)
    assert inbox.take(100) == []
    assert running.collector.received == 0
    release.set()
    wait_until(lambda: running.collector.received == 1, what="committed and acknowledged")
    wait_until(lambda: inbox.pending_count() == 0, what="stored")
    assert [v for _, v in running.store.query("elevator", "seq", T0, T0 + 10_000, device_id="elev-9")] == [1]


def test_store_down_mid_stream_spools_to_disk_and_drains_in_order(
    influxd: Influxd, publisher: Publisher, v1_collector: RunningCollector
) -> None:
    running = v1_collector
    publisher.publish_all(readings(200))
    wait_until(lambda: influx_count(influxd) == 800, what="first part stored")
    influxd.stop()
    publisher.publish_all(readings(300, start=200))
    inbox = Inbox(running.settings.inbox_path)
    # Acknowledged and held on disk while the store is down.
    wait_until(lambda: inbox.pending_count() == 1200, what="second part spooled")
    assert running.collector.writer.store_up is False
    influxd.start()
    wait_until(lambda: influx_count(influxd) == 2000, timeout_s=60, what="spool drained")
    assert influx_seqs(influxd) == {d: list(range(500)) for d in DEVICES}
    wait_until(lambda: inbox.pending_count() == 0, what="stored lines removed from the buffer")


def test_collector_killed_mid_stream_loses_nothing(
    tmp_path: Path, mosquitto: Mosquitto, influxd: Influxd, publisher: Publisher
) -> None:
    collector = CollectorProcess(
        mosquitto, influxd, tmp_path, "collector-kill-test", FACILITY_FLUSH_INTERVAL_S="0.1"
    )
    collector.start()
    per_device = 3000
    total = per_device * len(DEVICES)
    done = threading.Event()

    def publish() -> None:
        for start_seq in range(0, per_device, 100):
            publisher.publish_all(readings(100, start=start_seq))
        done.set()

    threading.Thread(target=publish, daemon=True).start()
    wait_until(lambda: influx_count(influxd) >= 2000, what="some readings stored")
    collector.stop(signal.SIGKILL)
    assert influx_count(influxd) < total, "the stream should still be running when the collector dies"
    collector.start()
    try:
        assert done.wait(120)
        wait_until(lambda: influx_count(influxd) == total, timeout_s=120, what="all stored after restart")
        assert influx_seqs(influxd) == {d: list(range(per_device)) for d in DEVICES}
        state = Inbox(tmp_path / "data" / "inbox.db").load_tracker().devices
        assert {key: d.lost for key, d in state.items()} == {(SITE, d): 0 for d in DEVICES}
    finally:
        collector.stop()


def test_broker_restart_the_collector_reconnects_and_resubscribes(
    mosquitto: Mosquitto, influxd: Influxd, v1_collector: RunningCollector
) -> None:
    running = v1_collector
    first = Publisher(mosquitto.url, "first")
    first.publish_all(readings(100))
    first.close()
    wait_until(lambda: influx_count(influxd) == 400, what="before the restart")
    mosquitto.stop()
    wait_until(lambda: not running.collector.connected.is_set(), what="collector saw the broker go")
    mosquitto.start()  # same port, no persistence: the collector must subscribe again
    wait_until(running.collector.connected.is_set, what="collector reconnected")
    second = Publisher(mosquitto.url, "second")
    second.publish_all(readings(100, start=100))
    second.close()
    wait_until(lambda: influx_count(influxd) == 800, what="after the restart")
    assert influx_seqs(influxd) == {d: list(range(200)) for d in DEVICES}


def test_every_reading_is_stored_once_when_the_writers_queue_in_memory_overflows(
    monkeypatch: pytest.MonkeyPatch, publisher: Publisher, embedded_collector: RunningCollector
) -> None:
    # Room for a few batches only: many are not handed and must be read back from the buffer, in
    # order, between handed ones, as when a slow store lets the writer fall behind a drain.
    monkeypatch.setattr(writer_module, "HANDED_MAX_LINES", 50)
    running = embedded_collector
    # Batches of 8, 48, 12, 36 and 4 lines: a large one does not fit where a later small one does.
    sizes = [2, 12, 3, 9, 1] * 20
    start = 0
    for size in sizes:
        publisher.publish_all(readings(size, start=start))
        start += size
    wait_until(lambda: running.collector.writer.stored == start * len(DEVICES), what="all stored")
    for device in DEVICES:
        raw = running.store.query("elevator", "seq", T0, T0 + 10_000_000, device_id=device)
        assert [v for _, v in raw] == list(range(start))


def test_only_the_v2_store_imports_influxdb_client() -> None:
    # influxdb-client is about 500 modules; the v1 store is plain HTTP and must not pay for them.
    probe = (
        "import sys; from collector.stores.influx import InfluxV1Store, InfluxV2Store;"
        " InfluxV1Store('http://127.0.0.1:9', 'db').close(); print('influxdb_client' in sys.modules);"
        " InfluxV2Store('http://127.0.0.1:9', 't', 'o', 'b').close(); print('influxdb_client' in sys.modules)"
    )
    root = Path(__file__).resolve().parents[2]
    found = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=root
    )
    assert found.stdout.split() == ["False", "True"]
