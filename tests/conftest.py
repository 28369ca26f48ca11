"""Fixtures: real servers on free ports, an in-process collector, and a QoS 1 publisher."""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import text

from collector.app import Collector
from collector.inbox import DeadLetter
from collector.lineprotocol import Point
from collector.stores.base import TimeSeriesStore
from collector.stores.factory import open_store
from facility.pipeline import Pipeline
from ground.clock import now_ms
from ground.contract import decode
from ground.settings import Settings
from records.db import Database, make_engine, migrate
from records.devices import DeviceDirectory
from rules.catalogue import default_rules_path, load_rules
from rules.engine import Engine
from tests.servers import (
    Influxd,
    Mosquitto,
    PostgreSQL,
    Server,
    VictoriaMetrics,
    find_binary,
    require_services,
)
from tickets.notify import Dispatcher
from tickets.service import TicketChange, TicketService
from tickets.timeline import ChangeRecorder


def _binary(name: str) -> str:
    path = find_binary(name)
    if path is None:
        message = f"{name} is not installed (apt-get install {name})"
        if require_services():
            pytest.fail(message + "; FACILITY_REQUIRE_SERVICES=1 forbids skipping")
        pytest.skip(message)
    return path


S = TypeVar("S", bound=Server)


def _serve(cls: type[S], name: str, tmp_path: Path) -> Iterator[S]:
    server = cls(_binary(name), tmp_path / name)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """A mosquitto broker of this test's own."""
    yield from _serve(Mosquitto, "mosquitto", tmp_path)


@pytest.fixture
def influxd(tmp_path: Path) -> Iterator[Influxd]:
    """An InfluxDB 1.x server of this test's own, with database `facility`."""
    for server in _serve(Influxd, "influxd", tmp_path):
        server.create_database("facility")
        yield server


@pytest.fixture(scope="session")
def postgresql() -> Iterator[PostgreSQL]:
    """One PostgreSQL server for the session (tests use their own tables' contents)."""
    from tests.servers import find_postgres_bin

    bindir = find_postgres_bin()
    if bindir is None:
        message = "PostgreSQL is not installed (apt-get install postgresql)"
        if require_services():
            pytest.fail(message + "; FACILITY_REQUIRE_SERVICES=1 forbids skipping")
        pytest.skip(message)
    server = PostgreSQL(bindir, Path("unused"))
    server.start()
    yield server
    server.stop()
    server.remove()


@pytest.fixture
def victoria_metrics(tmp_path: Path) -> Iterator[VictoriaMetrics]:
    """A victoria-metrics server of this test's own (speaks the InfluxDB v2 write API)."""
    yield from _serve(VictoriaMetrics, "victoria-metrics", tmp_path)


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    """Settings for a test: a data folder under tmp_path, a unique client id, short flushes."""
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "mqtt_client_id": f"collector-{tmp_path.name}",
        "flush_interval_s": 0.1,
        "buffer_sync": "NORMAL",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


class RunningCollector:
    """A Collector running in a thread of the test process."""

    def __init__(self, settings: Settings, store: TimeSeriesStore) -> None:
        self.settings = settings
        self.store = store
        self.collector = Collector(settings, store)
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self.collector.run, args=(self.stop_event,))
        self.thread.start()
        if not self.collector.connected.wait(15):
            self.stop()
            raise TimeoutError("collector did not connect")

    def stop(self) -> None:
        """Stop it and wait."""
        self.stop_event.set()
        self.thread.join(30)


@pytest.fixture
def run_collector() -> Iterator[Callable[[Settings], RunningCollector]]:
    """Start collectors in-process; all are stopped at the end of the test."""
    started: list[RunningCollector] = []

    def start(settings: Settings) -> RunningCollector:
        running = RunningCollector(settings, open_store(settings))
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()
        running.store.close()


class Publisher:
    """A QoS 1 publisher for tests."""

    def __init__(self, broker_url: str, client_id: str = "test-publisher") -> None:
        port = int(broker_url.rsplit(":", 1)[1])
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def publish(self, topic: str, payload: bytes | str | dict[str, object]) -> mqtt.MQTTMessageInfo:
        """Publish one message at QoS 1."""
        if isinstance(payload, dict):
            payload = json.dumps(payload)
        return self.client.publish(topic, payload, qos=1)

    def publish_all(self, messages: Sequence[tuple[str, bytes | str | dict[str, object]]]) -> None:
        """Publish and wait until the broker has every one."""
        infos = [self.publish(t, p) for t, p in messages]
        for info in infos:
            info.wait_for_publish(30)

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def publisher(mosquitto: Mosquitto) -> Iterator[Publisher]:
    """A publisher connected to this test's mosquitto."""
    pub = Publisher(mosquitto.url)
    yield pub
    pub.close()


def wait_until(check: Callable[[], bool], timeout_s: float = 30.0, what: str = "condition") -> None:
    """Poll `check` until it is true; fail the test after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def service(tmp_path: Path, mosquitto: Mosquitto) -> Iterator[Any]:
    """The whole service (`facility serve` without HTTP) on this test's mosquitto, records in SQLite."""
    from facility.service import Service

    svc = Service(make_settings(tmp_path, mqtt_url=mosquitto.url, admin_token=ADMIN_TOKEN))
    svc.start()
    assert svc.wait_ready(15), "collector did not subscribe"
    yield svc
    svc.stop()


ADMIN_TOKEN = "test-admin-token"


class Api:
    """Real HTTP to a service's API served by uvicorn on a free port."""

    def __init__(self, app: Any) -> None:
        import httpx
        import uvicorn

        from tests.servers import free_port

        port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline:
                raise TimeoutError("API did not start")
            time.sleep(0.02)
        self.http = httpx.Client(base_url=self.url, timeout=10)
        self.admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

    def get(self, path: str, token: str | None = ADMIN_TOKEN, **kw: Any) -> Any:
        """GET with a bearer token."""
        return self.http.get(path, headers=_auth(token), **kw)

    def post(self, path: str, json: Any = None, token: str | None = ADMIN_TOKEN) -> Any:
        """POST JSON with a bearer token."""
        return self.http.post(path, json=json, headers=_auth(token))

    def close(self) -> None:
        """Stop the server."""
        self.http.close()
        self.server.should_exit = True
        self.thread.join(10)


def _auth(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


@pytest.fixture
def api(service: Any) -> Iterator[Api]:
    """The running service's API over real HTTP, with the admin token by default."""
    client = Api(service.app())
    yield client
    client.close()


def _postgres_url(request: pytest.FixtureRequest) -> str:
    server: PostgreSQL = request.getfixturevalue("postgresql")
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = make_engine(server.url).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return server.url.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty records database: an SQLite file, or a database on the test PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'records.db'}"
    return _postgres_url(request)


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    """The records database, migrated to the newest schema."""
    database = Database(db_url)
    migrate(database.engine)
    yield database
    database.close()


class FedPipeline:
    """A Pipeline over real records, handed decoded messages directly, as the collector would.

    No broker: a message is decoded by the contract and given to `Pipeline.handle`, the way Home
    Assistant's tests fire MQTT messages at an integration. What the pipeline records for the
    time-series store and sets aside as dead letters is kept in lists.
    """

    def __init__(self, db: Database) -> None:
        from facility.wiring import Relay

        self.points: list[Point] = []
        self.set_aside: list[DeadLetter] = []
        self.dispatcher = Dispatcher([])
        to_pipeline = Relay[TicketChange]("the pipeline")
        self.tickets = TicketService(db, listeners=[to_pipeline, ChangeRecorder(self.points.extend)])
        self.pipeline = Pipeline(
            Engine(load_rules(default_rules_path())),
            self.tickets,
            DeviceDirectory(db),
            db,
            self.dispatcher,
            db,
            record=self.points.extend,
            set_aside=self.set_aside.extend,
        )
        to_pipeline.bind(self.pipeline.on_ticket_change)

    def deliver(self, topic: str, payload: dict[str, Any], received_ms: int | None = None) -> None:
        """Decode one message as the collector does and hand it to the pipeline."""
        received = now_ms() if received_ms is None else received_ms
        self.pipeline.handle([decode(topic, json.dumps(payload).encode(), received)])

    def measurements(self, name: str) -> list[str]:
        """The recorded points of one measurement, as line protocol."""
        return [line for line, _ts in self.points if line.startswith(f"{name},")]

    def close(self) -> None:
        """Deliver what the dispatcher holds, then stop it."""
        self.dispatcher.stop()


@pytest.fixture
def pipeline(db: Database) -> Iterator[FedPipeline]:
    """A pipeline over the records database (SQLite, then PostgreSQL), fed without a broker."""
    fed = FedPipeline(db)
    yield fed
    fed.close()


CHROMIUM = os.environ.get("FACILITY_CHROMIUM", "/usr/bin/chromium")
# Without these, chromium reaches for Google's hosts at start, which a closed network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A headless Debian chromium for a test module, driven by Playwright.

    Per module, not per session: Playwright's sync API runs an event loop in this thread while it
    is open, and tests after the browser's modules start event loops of their own (asyncio.run).
    """
    if not os.path.exists(CHROMIUM):
        message = f"{CHROMIUM} is not installed (apt-get install chromium)"
        if require_services():
            pytest.fail(message + "; FACILITY_REQUIRE_SERVICES=1 forbids skipping")
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
