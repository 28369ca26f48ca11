"""Every InfluxQL query of the dashboards (panels, variables, annotations) returns data from a real influxd.

The pipeline fills InfluxDB 1.x through its v1 API: the whole service (facility.service.Service)
on a real mosquitto, fed by `facility simulate` (the fleet, faults at a high rate, device time in
the past) and by every shipped fault scenario, so readings, events, alarms, tickets and status
counts exist; tickets are then acknowledged and resolved through the API, and patrol rounds
created through it are walked by `facility patrol walk`. Grafana's macros are replaced as
Grafana would ($timeFilter, $__interval, and each variable by all its values, the values coming
from the variable's own query).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from grafana.dashboards import FOLDER
from ground.settings import MqttEndpoint
from simulators import scenario
from tests.conftest import ADMIN_TOKEN, Api, make_settings, wait_until
from tests.servers import Influxd, Mosquitto

pytestmark = pytest.mark.services

ROOT = Path(__file__).resolve().parents[2]
INTERVAL = "10s"


def _influx_rows(influxd: Influxd, q: str) -> list[dict[str, Any]]:
    return influxd.query(q, database="facility")


def _count(influxd: Influxd, measurement: str) -> int:
    series = _influx_rows(influxd, f'SELECT count(*) FROM "{measurement}"')
    return max((v for s in series for row in s["values"] for v in row[1:] if isinstance(v, int)), default=0)


def _patrol_rounds(api: Api, env: dict[str, str], start: datetime) -> None:
    """Rounds walked by the guard simulator through the pipeline: on time, early, late, skipped, swapped."""
    for i in range(5):
        body = {"id": f"cp-{i}", "site": "demo", "name": f"Checkpoint {i}", "tag": f"tag-{i}"}
        assert api.post("/api/v1/patrol/checkpoints", body).status_code == 201
    stops = [{"checkpoint": f"cp-{i}", "after_min": 10 * i} for i in range(5)]
    route = {"id": "night", "site": "demo", "name": "Night", "checkpoints": stops}
    assert api.post("/api/v1/patrol/routes", route).status_code == 201
    walks = [[], ["--late", "420"], ["--late", "-400"], ["--skip", "cp-1", "--swap", "cp-3", "cp-4"]]
    for n, walk in enumerate(walks):
        began = (start + timedelta(hours=n)).isoformat()
        round_ = api.post(
            "/api/v1/patrol/rounds", {"route": "night", "guard": "g-0012", "start": began}
        ).json()
        command = ["patrol", "walk", "--api", api.url, "--token", ADMIN_TOKEN, "--round", str(round_["id"])]
        reader = ["--reader", f"reader-{n}", *walk]
        subprocess.run([sys.executable, "-m", "facility", *command, *reader], env=env, check=True, timeout=60)


def _maintenance_done(api: Api) -> None:
    """A plan whose first work order opens when it is entered, worked through its checklist to resolved."""
    plan = {
        "site": "demo",
        "name": "Pump service",
        "device_ids": ["pump-9"],
        "items": ["seals"],
        "every": "P1M",
    }
    assert api.post("/api/v1/maintenance/plans", plan).status_code == 201
    [order] = api.get("/api/v1/tickets", params={"source": "maintenance"}).json()
    marks = {"items": [{"item": "seals", "done": True}]}
    checklist = f"/api/v1/maintenance/work-orders/{order['id']}/checklist"
    assert api.http.put(checklist, json=marks, headers=api.admin).status_code == 200
    for action in ("acknowledge", "start", "resolve"):
        answer = api.post(f"/api/v1/tickets/{order['id']}/{action}")
        assert answer.status_code == 200, answer.text


@pytest.fixture
def filled(tmp_path: Path, mosquitto: Mosquitto, influxd: Influxd) -> Iterator[tuple[Influxd, int, int]]:
    """influxd filled by the real pipeline; yields it with the time range (ms) its data spans."""
    from facility.service import Service

    settings = make_settings(
        tmp_path,
        mqtt_url=mosquitto.url,
        influx_url=influxd.url,
        influx_api="v1",
        influx_database="facility",
        admin_token=ADMIN_TOKEN,
        status_interval_s=1.0,
    )
    service = Service(settings)
    service.start()
    assert service.wait_ready(15)
    api = Api(service.app())
    now = datetime.now(UTC)
    # Far enough back for every scenario, one after another, to end before now (12 h of device
    # time): the service refuses readings stamped ahead of their arrival.
    base = now - timedelta(hours=13)
    try:
        # The fleet, with faults many times an hour, on device time from 20 minutes ago.
        fleet_start = int((now - timedelta(minutes=20)).timestamp() * 1000)
        env = {**os.environ, "FACILITY_MQTT_URL": mosquitto.url, "FACILITY_LOG_LEVEL": "WARNING"}
        simulate = ["simulate", "--rate", "60", "--duration", "12", "--faults", "3600"]
        fleet = subprocess.Popen(
            [sys.executable, "-m", "facility", *simulate, "--start", str(fleet_start), "--seed", "5"],
            env=env,
            cwd=tmp_path,
        )
        # Every fault scenario, one after another on device time, none overlapping.
        start = base
        for path in scenario.scenario_paths():
            story = scenario.load(path)
            start_ms = int(start.timestamp() * 1000)
            scenario.run(MqttEndpoint(mosquitto.url), story, threading.Event(), start_ms=start_ms)
            start += timedelta(milliseconds=scenario.messages(story, 0)[-1].t_ms) + timedelta(minutes=5)
        assert fleet.wait(60) == 0
        wait_until(lambda: _count(influxd, "tickets") > 0, 60, "ticket changes in influxd")
        # Work some tickets, so that times to acknowledge and to resolve exist.
        fields = {
            "cause": "c",
            "measures": "m",
            "result": "r",
            "emergency_plan_started": True,
            "leadership_informed": True,
            "temporary_measures": "t",
            "cause_class": "equipment",
        }
        tickets = api.get("/api/v1/tickets", params={"status": "open", "limit": 5}).json()
        assert tickets
        for ticket in tickets:
            for action in ("acknowledge", "start", "resolve"):
                body = fields if action == "resolve" else None
                answer = api.post(f"/api/v1/tickets/{ticket['id']}/{action}", json=body)
                assert answer.status_code == 200, answer.text
        _maintenance_done(api)
        _patrol_rounds(api, env, base)
        # The skipped checkpoint counts as missed once the round's settling time has passed.
        wait_until(lambda: _count(influxd, "patrol_rounds") >= 4, 60, "patrol rounds in influxd")
        wait_until(lambda: _count(influxd, "service_status") >= 3, 30, "service status points")
        wait_until(lambda: _count(influxd, "work_orders") >= 1, 30, "a work order done")
        time.sleep(1.5)  # the last ticket changes through the durable buffer
        lo = int((base - timedelta(hours=1)).timestamp() * 1000)
        hi = int((datetime.now(UTC) + timedelta(hours=1)).timestamp() * 1000)
        yield influxd, lo, hi
    finally:
        api.close()
        service.stop()


def _substitute(query: str, values: dict[str, list[str]], lo: int, hi: int) -> str:
    query = query.replace("$timeFilter", f"time >= {lo}ms AND time <= {hi}ms").replace(
        "$__interval", INTERVAL
    )
    for name, found in values.items():
        query = re.sub(rf"\${name}\b", "(" + "|".join(re.escape(v) for v in found) + ")", query)
    assert "$" not in query.replace("$/", "/").replace("$tag", ""), query
    return query


def _has_data(series: list[dict[str, Any]]) -> bool:
    return any(v is not None for s in series for row in s["values"] for v in row[1:])


def _dashboards() -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(FOLDER.glob("*.json"))]


def test_every_query_of_every_dashboard_returns_data(filled: tuple[Influxd, int, int]) -> None:
    influxd, lo, hi = filled
    empty = []
    checked = 0
    for doc in _dashboards():
        values: dict[str, list[str]] = {}
        for variable in doc["templating"]["list"]:
            series = _influx_rows(influxd, _substitute(variable["query"], values, lo, hi))
            checked += 1
            found = sorted({row[1] for s in series for row in s["values"]})
            if not found:
                empty.append(f"{doc['uid']}: variable {variable['name']}")
            values[variable["name"]] = found or ["none"]
        queries = [(f"annotation {a['name']}", a["target"]["query"]) for a in doc["annotations"]["list"]]
        for panel in doc["panels"]:
            queries += [(f"panel {panel['title']}", t["query"]) for t in panel.get("targets", [])]
        for where, query in queries:
            checked += 1
            if not _has_data(_influx_rows(influxd, _substitute(query, values, lo, hi))):
                empty.append(f"{doc['uid']}: {where}: {query}")
    assert not empty, "queries without data:\n" + "\n".join(empty)
    assert checked > 100
