"""A guard walking a patrol round: the planned scans, their payloads, the CLI, and publishing to a broker."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from facility.cli import main
from ground.contract import MAX_TS_MS, decode
from ground.settings import MqttEndpoint
from simulators import patrol
from simulators.patrol import PATROL_FINDING, PATROL_SCAN, Finding, Scan, Walk, WalkError, payloads, plan_walk
from tests.conftest import Publisher, wait_until
from tests.servers import Mosquitto, free_port

TOKEN = "patrol-test-token"
MIN = 60_000
T0 = int(datetime.fromisoformat("2026-11-27T22:00:00+00:00").timestamp() * 1000)
CHECKPOINTS = ["cp-lobby", "cp-b1-pump-room", "cp-b2-garage-03", "cp-roof-tank"]
TOPIC = "facility/v1/site-01/patrol_reader/reader-g-0012/event"


def make_round(start_ms: int = T0, interval_ms: int = 10 * MIN) -> dict[str, Any]:
    """A round as `GET /api/v1/patrol/rounds/5` serves it, checkpoints `interval_ms` apart."""

    def iso(ms: int) -> str:
        return datetime.fromtimestamp(ms / 1000).astimezone().isoformat()

    return {
        "id": 5,
        "site": "site-01",
        "route": "r-night",
        "guard": "g-0012",
        "guards": ["g-0012"],
        "start": iso(start_ms),
        "status": "scheduled",
        "checkpoints": [
            {
                "position": i,
                "checkpoint": cp,
                "tag": cp.replace("cp-", "tag-"),
                "due": iso(start_ms + i * interval_ms),
                "status": "pending",
                "scanned_at": None,
            }
            for i, cp in enumerate(CHECKPOINTS)
        ],
    }


ROUND = make_round()
ROUND["checkpoints"][0]["due"] = "2026-11-27T22:00:00Z"  # the API may answer Z or an offset


def due(checkpoint: str) -> int:
    return T0 + CHECKPOINTS.index(checkpoint) * 10 * MIN


def tag(checkpoint: str) -> str:
    return checkpoint.replace("cp-", "tag-")


def walked(scans: list[Scan]) -> list[tuple[str, str, int]]:
    return [(s.checkpoint, s.code, s.ts) for s in scans]


# Planning.


def test_on_time_every_tag_is_read_at_its_due_time_in_route_order() -> None:
    scans = plan_walk(ROUND, Walk())
    assert walked(scans) == [(cp, PATROL_SCAN, due(cp)) for cp in CHECKPOINTS]
    assert [s.detail for s in scans] == [{"tag": tag(cp), "guard": "g-0012"} for cp in CHECKPOINTS]


@pytest.mark.parametrize("late_s", [420, -90, 0.5])
def test_late_or_early_moves_every_scan(late_s: float) -> None:
    scans = plan_walk(ROUND, Walk(late_s=late_s))
    assert walked(scans) == [(cp, PATROL_SCAN, due(cp) + int(late_s * 1000)) for cp in CHECKPOINTS]


def test_a_skipped_checkpoint_is_not_scanned_and_the_others_keep_their_times() -> None:
    scans = plan_walk(ROUND, Walk(skip=frozenset({"cp-b1-pump-room", "cp-roof-tank"})))
    assert walked(scans) == [(cp, PATROL_SCAN, due(cp)) for cp in ("cp-lobby", "cp-b2-garage-03")]


def test_swapped_checkpoints_are_walked_in_each_others_place() -> None:
    scans = plan_walk(ROUND, Walk(swap=("cp-b1-pump-room", "cp-roof-tank")))
    assert walked(scans) == [
        ("cp-lobby", PATROL_SCAN, due("cp-lobby")),
        ("cp-roof-tank", PATROL_SCAN, due("cp-b1-pump-room")),
        ("cp-b2-garage-03", PATROL_SCAN, due("cp-b2-garage-03")),
        ("cp-b1-pump-room", PATROL_SCAN, due("cp-roof-tank")),
    ]
    assert scans[1].detail["tag"] == "tag-roof-tank"


def test_repeat_reads_every_tag_twice_ten_seconds_apart() -> None:
    scans = plan_walk(ROUND, Walk(repeat=True))
    expected = [(cp, PATROL_SCAN, due(cp) + extra) for cp in CHECKPOINTS for extra in (0, 10_000)]
    assert walked(scans) == expected
    assert scans[0].detail == scans[1].detail


def test_findings_come_thirty_seconds_after_the_scan_with_text_and_device() -> None:
    findings = [
        Finding("cp-b2-garage-03", "lamp out above bay 31", "light-b2-07"),
        Finding("cp-lobby", "消防門未關"),
    ]
    scans = plan_walk(ROUND, Walk(late_s=60, findings=findings))
    reported = [s for s in scans if s.code == PATROL_FINDING]
    assert [(s.checkpoint, s.ts) for s in reported] == [
        ("cp-lobby", due("cp-lobby") + 90_000),
        ("cp-b2-garage-03", due("cp-b2-garage-03") + 90_000),
    ]
    assert reported[0].detail == {"tag": "tag-lobby", "guard": "g-0012", "text": "消防門未關"}
    assert reported[1].detail == {
        "tag": "tag-b2-garage-03",
        "guard": "g-0012",
        "text": "lamp out above bay 31",
        "device_id": "light-b2-07",
    }
    assert [s.ts for s in scans] == sorted(s.ts for s in scans)


def test_jitter_is_bounded_and_the_same_for_the_same_seed() -> None:
    walk = Walk(jitter_s=120, seed=7)
    first, again = plan_walk(ROUND, walk), plan_walk(ROUND, walk)
    assert first == again
    assert plan_walk(ROUND, replace(walk, seed=8)) != first
    assert all(abs(s.ts - due(s.checkpoint)) <= 120_000 for s in first)
    assert any(s.ts != due(s.checkpoint) for s in first)
    # Skipping a checkpoint leaves the other scans' draws alone.
    skipped = plan_walk(ROUND, replace(walk, skip=frozenset({"cp-lobby"})))
    assert skipped == first[1:]


@pytest.mark.parametrize(
    "walk",
    [
        Walk(skip=frozenset({"cp-nowhere"})),
        Walk(swap=("cp-lobby", "cp-nowhere")),
        Walk(findings=[Finding("cp-nowhere", "leak")]),
    ],
)
def test_a_checkpoint_not_on_the_round_is_refused_by_name(walk: Walk) -> None:
    with pytest.raises(WalkError, match=r"not on the round: cp-nowhere \(the round has cp-lobby, "):
        plan_walk(ROUND, walk)


def test_a_finding_at_a_skipped_checkpoint_and_a_negative_jitter_are_refused() -> None:
    with pytest.raises(WalkError, match="skipped"):
        plan_walk(ROUND, Walk(skip=frozenset({"cp-lobby"}), findings=[Finding("cp-lobby", "leak")]))
    with pytest.raises(WalkError, match="jitter"):
        plan_walk(ROUND, Walk(jitter_s=-1))


def test_a_round_without_offsets_or_a_guard_is_refused() -> None:
    naive = json.loads(json.dumps(ROUND))
    naive["checkpoints"][1]["due"] = "2026-11-27T22:10:00"
    with pytest.raises(WalkError, match=r"checkpoints\[1\]\.due .* has no offset"):
        plan_walk(naive, Walk())
    with pytest.raises(WalkError, match="no guard"):
        plan_walk({**ROUND, "guard": None, "guards": []}, Walk())


# Payloads.


def test_payloads_keep_the_contract_with_ts_and_increasing_seq() -> None:
    walk = Walk(repeat=True, findings=[Finding("cp-roof-tank", "水箱蓋未鎖", "water-tank-1")])
    scans = plan_walk(ROUND, walk)
    # The payloads are checked, not the clock they were made for.
    messages = [decode(TOPIC, p, 0, skew_ms=MAX_TS_MS) for p in payloads(scans, start_seq=40)]
    assert [m.seq for m in messages] == list(range(40, 40 + len(scans)))
    assert [m.ts for m in messages] == [s.ts for s in scans]
    assert [(m.body["code"], m.body["detail"], m.body["state"]) for m in messages] == [
        (s.code, s.detail, None) for s in scans
    ]
    assert all(m.device_type == "patrol_reader" and m.device_id == "reader-g-0012" for m in messages)


# The command line, against a stand-in for the API.


class RoundApi:
    """Serves `GET /api/v1/patrol/rounds/{id}` for the rounds given, to the one token, on a free port."""

    def __init__(self, rounds: dict[int, dict[str, Any]]) -> None:
        by_path = {f"/api/v1/patrol/rounds/{n}": r for n, r in rounds.items()}

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                found = by_path.get(self.path)
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    self._answer(401, {"detail": "invalid token"})
                elif found is None:
                    self._answer(404, {"detail": "no such round"})
                else:
                    self._answer(200, found)

            def _answer(self, status: int, doc: object) -> None:
                body = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep the test output to the test's own

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        """Stop serving and release the port."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def round_api() -> Iterator[RoundApi]:
    server = RoundApi({5: ROUND})
    yield server
    server.close()


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI without signal handlers in the test process, no admin token, and no broker yet."""
    monkeypatch.setattr("collector.app.stop_on_signals", threading.Event)
    monkeypatch.delenv("FACILITY_ADMIN_TOKEN", raising=False)
    monkeypatch.setenv("FACILITY_MQTT_URL", f"mqtt://127.0.0.1:{free_port()}")


def walk_cli(api: str, *extra: str, token: str = TOKEN, round_id: int = 5) -> int:
    return main(["patrol", "walk", "--api", api, "--token", token, "--round", str(round_id), *extra])


@pytest.mark.parametrize(
    "extra",
    [
        ["--skip", "cp-nowhere"],
        ["--swap", "cp-lobby", "cp-nowhere"],
        ["--finding", "cp-nowhere", "leak", "light-b2-07"],
    ],
)
@pytest.mark.usefixtures("cli_env")
def test_cli_refuses_a_checkpoint_not_on_the_round(
    round_api: RoundApi, extra: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert walk_cli(round_api.url, *extra) == 2
    err = capsys.readouterr().err
    assert "not on the round: cp-nowhere" in err
    assert "cp-lobby, cp-b1-pump-room" in err


@pytest.mark.usefixtures("cli_env")
def test_cli_says_why_it_cannot_fetch_the_round_or_use_the_reader(
    round_api: RoundApi, capsys: pytest.CaptureFixture[str]
) -> None:
    assert walk_cli(round_api.url, round_id=99) == 2
    assert "round 99: no such patrol round" in capsys.readouterr().err
    assert walk_cli(round_api.url, token="wrong") == 2
    assert "refused the token (401)" in capsys.readouterr().err
    assert walk_cli(f"http://127.0.0.1:{free_port()}") == 2
    assert "cannot fetch round 5 from" in capsys.readouterr().err
    assert walk_cli(round_api.url, "--reader", "Reader 7") == 2
    assert "device_id 'Reader 7'" in capsys.readouterr().err


@pytest.mark.usefixtures("cli_env")
def test_cli_finding_takes_two_or_three_values(
    round_api: RoundApi, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        walk_cli(round_api.url, "--finding", "cp-lobby")
    assert exited.value.code == 2
    assert "expected CHECKPOINT TEXT [DEVICE_ID]" in capsys.readouterr().err


# Publishing through a real broker.


MARKER_TOPIC = "facility/v1/marker/patrol_reader/end-of-walk/event"


class Subscriber:
    """Collects (topic, payload, qos) of every patrol reader event, subscribed at QoS 1."""

    def __init__(self, broker: Mosquitto) -> None:
        self.received: list[tuple[str, bytes, int, float]] = []
        subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="patrol-test-subscriber")
        self.client.on_message = lambda _c, _u, m: self.received.append(
            (m.topic, bytes(m.payload), m.qos, time.time())
        )
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.connect("127.0.0.1", broker.port)
        self.client.subscribe("facility/v1/+/patrol_reader/+/event", qos=1)
        self.client.loop_start()
        assert subscribed.wait(10), "no SUBACK"

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def subscriber(mosquitto: Mosquitto) -> Iterator[Subscriber]:
    sub = Subscriber(mosquitto)
    yield sub
    sub.close()


@pytest.mark.services
@pytest.mark.usefixtures("cli_env")
def test_cli_publishes_exactly_the_planned_events_at_qos_1(
    round_api: RoundApi,
    mosquitto: Mosquitto,
    subscriber: Subscriber,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("FACILITY_MQTT_URL", mosquitto.url)
    options = ["--late", "400", "--repeat", "--swap", "cp-lobby", "cp-roof-tank", "--skip", "cp-b1-pump-room"]
    options += ["--finding", "cp-b2-garage-03", "lamp out above bay 31", "light-b2-07", "--seq-start", "7"]
    assert walk_cli(round_api.url, *options) == 0
    walk = Walk(
        late_s=400,
        repeat=True,
        swap=("cp-lobby", "cp-roof-tank"),
        skip=frozenset({"cp-b1-pump-room"}),
        findings=[Finding("cp-b2-garage-03", "lamp out above bay 31", "light-b2-07")],
    )
    expected = payloads(plan_walk(ROUND, walk), start_seq=7)
    assert f"round 5: {len(expected)} events published" in capsys.readouterr().out
    wait_until(lambda: len(subscriber.received) >= len(expected), 10, "every event at the subscriber")
    # The walk had every event acknowledged before it returned; a marker published now reaches the
    # subscriber after all of them, so once it is there, an extra event would be there too.
    marker = Publisher(mosquitto.url, "patrol-walk-marker")
    marker.publish_all([(MARKER_TOPIC, b"{}")])
    marker.close()
    wait_until(lambda: subscriber.received[-1][0] == MARKER_TOPIC, 10, "the marker after the walk")
    assert [(t, p, q) for t, p, q, _ in subscriber.received[:-1]] == [(TOPIC, p, 1) for p in expected]


@pytest.mark.services
def test_an_offline_reader_uploads_after_the_wait(
    round_api: RoundApi, subscriber: Subscriber, mosquitto: Mosquitto
) -> None:
    began = time.time()
    sent = patrol.walk_round(
        MqttEndpoint(mosquitto.url), round_api.url, TOKEN, 5, Walk(), "reader-7", upload_after_s=0.5
    )
    assert sent == len(CHECKPOINTS)
    wait_until(lambda: len(subscriber.received) == sent, 10, "the upload")
    assert min(at for *_, at in subscriber.received) >= began + 0.5
    assert {t for t, *_ in subscriber.received} == {TOPIC.replace("reader-g-0012", "reader-7")}


@pytest.mark.services
def test_realtime_publishes_each_event_at_its_device_time(
    subscriber: Subscriber, mosquitto: Mosquitto
) -> None:
    soon = make_round(int(time.time() * 1000) + 300, interval_ms=200)
    scans = plan_walk(soon, Walk())
    topic = patrol.reader_topic("site-01", "reader-g-0012")
    assert patrol.publish(MqttEndpoint(mosquitto.url), topic, scans, realtime=True) == len(scans)
    wait_until(lambda: len(subscriber.received) == len(scans), 10, "every event")
    for scan, (*_, at) in zip(scans, subscriber.received, strict=True):
        assert at >= scan.ts / 1000 - 0.01  # not before its device time (clock resolution aside)
