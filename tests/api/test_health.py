"""/health answers 503 naming what is wrong (broker, time-series store), and 200 once it is back."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from facility.service import Service
from tests.conftest import ADMIN_TOKEN, Api, Publisher, make_settings, wait_until
from tests.servers import Influxd, Mosquitto, PostgreSQL, find_postgres_bin, require_services

pytestmark = pytest.mark.services


def _health(api: Api) -> tuple[int, dict[str, Any]]:
    r = api.get("/health", token=None)
    return r.status_code, r.json()


def test_a_service_without_its_broker_answers_503_naming_mqtt(api: Api, mosquitto: Mosquitto) -> None:
    status, body = _health(api)
    assert (status, body["status"]) == (200, "ok") and "problems" not in body
    mosquitto.stop()
    wait_until(lambda: _health(api)[0] == 503, timeout_s=30, what="503 with the broker stopped")
    status, body = _health(api)
    assert status == 503 and body["status"] == "unhealthy" and set(body["problems"]) == {"mqtt"}
    assert "broker" in body["problems"]["mqtt"]
    assert body["mqtt_connected"] == 0.0 and body["store_up"] == 1.0, "the counters are still there"
    assert "facility_mqtt_connected 0" in api.get("/metrics", token=None).text
    mosquitto.start()
    wait_until(lambda: _health(api)[0] == 200, timeout_s=60, what="200 with the broker back")
    status, body = _health(api)
    assert status == 200 and body["status"] == "ok" and body["mqtt_connected"] == 1.0
    assert "problems" not in body


@pytest.fixture
def influx_service(tmp_path: Path, mosquitto: Mosquitto, influxd: Influxd) -> Iterator[tuple[Service, Api]]:
    """The service storing readings in a real influxd (v1 API), and its API over HTTP."""
    settings = make_settings(
        tmp_path,
        mqtt_url=mosquitto.url,
        admin_token=ADMIN_TOKEN,
        influx_url=influxd.url,
        influx_api="v1",
        influx_database="facility",
    )
    service = Service(settings)
    service.start()
    assert service.wait_ready(15)
    api = Api(service.app())
    yield service, api
    api.close()
    service.stop()


def test_a_service_whose_store_is_down_answers_503_naming_the_store(
    influx_service: tuple[Service, Api], influxd: Influxd, publisher: Publisher
) -> None:
    _service, api = influx_service
    tank = "facility/v1/s1/water_tank/tank-1/telemetry"
    t0 = int(time.time() * 1000)
    publisher.publish_all([(tank, {"ts": t0, "seq": 0, "metrics": {"level_pct": 80.0}})])
    wait_until(lambda: _health(api)[1]["readings_stored_total"] >= 1, what="the first reading stored")
    assert _health(api)[0] == 200
    influxd.stop()
    publisher.publish_all([(tank, {"ts": t0 + 1000, "seq": 1, "metrics": {"level_pct": 79.0}})])
    wait_until(lambda: _health(api)[0] == 503, timeout_s=30, what="503 with the store down")
    status, body = _health(api)
    assert status == 503 and set(body["problems"]) == {"store"} and body["store_up"] == 0.0
    influxd.start()
    wait_until(lambda: _health(api)[0] == 200, timeout_s=60, what="200 with the store back")
    assert _health(api)[1]["readings_stored_total"] >= 2


@pytest.fixture
def own_postgresql() -> Iterator[PostgreSQL]:
    """A PostgreSQL server of this test's own, to stop without disturbing the other tests."""
    bindir = find_postgres_bin()
    if bindir is None:
        if require_services():
            pytest.fail("PostgreSQL is not installed; FACILITY_REQUIRE_SERVICES=1 forbids skipping")
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    server = PostgreSQL(bindir, Path("unused"))
    server.start()
    yield server
    _fast_stop(server)
    server.remove()


def _fast_stop(server: PostgreSQL) -> None:
    """Stop PostgreSQL without waiting for its clients' sessions to end, as a crash or a failover would."""
    pidfile = server.data / "postmaster.pid"
    if pidfile.exists():
        # SIGINT is a fast shutdown; sent to the postmaster itself, as `runuser` passes on only SIGTERM.
        os.kill(int(pidfile.read_text().split()[0]), signal.SIGINT)
    server.stop()


def test_a_service_whose_records_database_is_down_answers_503_naming_it(
    tmp_path: Path, mosquitto: Mosquitto, own_postgresql: PostgreSQL
) -> None:
    settings = make_settings(
        tmp_path, mqtt_url=mosquitto.url, admin_token=ADMIN_TOKEN, database_url=own_postgresql.url
    )
    service = Service(settings)
    service.start()
    api = Api(service.app())
    try:
        assert service.wait_ready(15)
        assert _health(api)[0] == 200
        _fast_stop(own_postgresql)
        status, body = _health(api)
        assert status == 503 and set(body["problems"]) == {"records"}, body
        assert "records database" in body["problems"]["records"]
        own_postgresql.start()
        wait_until(lambda: _health(api)[0] == 200, timeout_s=30, what="200 with the database back")
    finally:
        api.close()
        service.stop()
