"""`facility grafana push` against a stand-in for the few Grafana endpoints grafana-client calls.

A stand-in because Grafana cannot run here (not in Debian, no Docker engine). It keeps data
sources, folders and dashboards in memory as Grafana does: one data source per uid and name,
one dashboard per uid (a save without `overwrite` of an existing uid is refused with 412).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from facility.cli import main
from grafana.dashboards import FOLDER
from grafana.push import DATASOURCE_NAME, InfluxSource, connect, push

TOKEN = "glsa_test_token"


class FakeGrafana:
    """What the stand-in holds, and the Authorization header of every request."""

    def __init__(self) -> None:
        self.datasources: dict[str, dict[str, Any]] = {}
        self.folders: dict[str, dict[str, Any]] = {}
        self.dashboards: dict[str, dict[str, Any]] = {}
        self.authorizations: list[str | None] = []
        self.next_id = 1


def _handler(state: FakeGrafana) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _answer(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> Any:
            return json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"null")

        def _route(self, method: str) -> None:
            state.authorizations.append(self.headers.get("Authorization"))
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                return self._answer(401, {"message": "Unauthorized"})
            path = unquote(self.path.split("?")[0])
            parts = path.strip("/").split("/")
            if parts[:2] == ["api", "datasources"]:
                return self._datasources(method, parts[2:])
            if parts[:2] == ["api", "folders"]:
                return self._folders(method, parts[2:])
            if method == "POST" and parts == ["api", "dashboards", "db"]:
                return self._save_dashboard(self._body())
            return self._answer(404, {"message": "Not found"})

        def _datasources(self, method: str, rest: list[str]) -> None:
            if method == "GET" and len(rest) == 2 and rest[0] in ("uid", "name"):
                key = "uid" if rest[0] == "uid" else "name"
                for ds in state.datasources.values():
                    if ds[key] == rest[1]:
                        return self._answer(200, ds)
                return self._answer(404, {"message": "Data source not found"})
            if method == "POST" and not rest:
                body = self._body()
                if any(ds["name"] == body["name"] for ds in state.datasources.values()):
                    return self._answer(409, {"message": "data source with the same name already exists"})
                body["id"] = state.next_id
                state.next_id += 1
                state.datasources[body["uid"]] = body
                return self._answer(200, {"datasource": body, "message": "Datasource added"})
            if method == "PUT" and len(rest) == 2 and rest[0] == "uid" and rest[1] in state.datasources:
                body = self._body()
                body["id"] = state.datasources[rest[1]]["id"]
                state.datasources[rest[1]] = body
                return self._answer(200, {"datasource": body, "message": "Datasource updated"})
            return self._answer(404, {"message": "Not found"})

        def _folders(self, method: str, rest: list[str]) -> None:
            if method == "GET" and len(rest) == 1:
                if rest[0] in state.folders:
                    return self._answer(200, state.folders[rest[0]])
                return self._answer(404, {"message": "folder not found"})
            if method == "POST" and not rest:
                body = self._body()
                state.folders[body["uid"]] = body
                return self._answer(200, body)
            return self._answer(404, {"message": "Not found"})

        def _save_dashboard(self, body: dict[str, Any]) -> None:
            uid = body["dashboard"]["uid"]
            if uid in state.dashboards and not body.get("overwrite"):
                return self._answer(412, {"status": "name-exists", "message": "exists"})
            if body.get("folderUid") not in state.folders:
                return self._answer(400, {"message": "folder not found"})
            state.dashboards[uid] = body
            return self._answer(200, {"status": "success", "uid": uid, "url": f"/d/{uid}"})

        def do_GET(self) -> None:
            self._route("GET")

        def do_POST(self) -> None:
            self._route("POST")

        def do_PUT(self) -> None:
            self._route("PUT")

    return Handler


@pytest.fixture
def grafana() -> Iterator[tuple[str, FakeGrafana]]:
    """The stand-in on a free loopback port: its URL and its state."""
    state = FakeGrafana()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", state
    server.shutdown()
    server.server_close()


SOURCE = InfluxSource(url="http://influxdb:8086", database="facility", token="influx-read-token")


Stand = tuple[str, FakeGrafana]


def test_two_pushes_leave_one_datasource_and_one_copy_of_each_dashboard(grafana: Stand) -> None:
    url, state = grafana
    first = push(connect(url, TOKEN), SOURCE)
    second = push(connect(url, TOKEN), SOURCE)

    assert first[0].endswith("created") and second[0].endswith("updated")
    assert list(state.datasources) == ["facility-influxdb"]
    ds = state.datasources["facility-influxdb"]
    assert (ds["type"], ds["url"]) == ("influxdb", "http://influxdb:8086")
    assert ds["jsonData"]["dbName"] == "facility"
    assert ds["jsonData"]["version"] == "InfluxQL"
    assert ds["secureJsonData"]["httpHeaderValue1"] == "Token influx-read-token"
    assert list(state.folders) == ["facility"]
    committed = {json.loads(p.read_text())["uid"] for p in FOLDER.glob("*.json")}
    assert set(state.dashboards) == committed
    assert all(d["folderUid"] == "facility" and d["overwrite"] for d in state.dashboards.values())
    assert state.authorizations and all(a == f"Bearer {TOKEN}" for a in state.authorizations)


def test_a_datasource_found_by_name_is_updated_under_its_own_uid(grafana: Stand) -> None:
    url, state = grafana
    state.datasources["older"] = {"id": 7, "uid": "older", "name": DATASOURCE_NAME, "type": "influxdb"}
    push(connect(url, TOKEN), SOURCE)
    assert list(state.datasources) == ["older"]
    assert state.datasources["older"]["url"] == "http://influxdb:8086"
    # Every panel now names the data source by the uid it has.
    text = json.dumps(state.dashboards)
    assert "facility-influxdb" not in text and '"uid": "older"' in text


def test_the_command_pushes_and_reports_a_refused_token(
    grafana: Stand, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    url, state = grafana
    monkeypatch.chdir(tmp_path)  # no .env of the working tree
    monkeypatch.setenv("FACILITY_INFLUX_URL", "http://influx.example:8086")
    assert main(["grafana", "push", "--url", url, "--token", TOKEN, "--influx-token", "t"]) == 0
    assert state.datasources["facility-influxdb"]["url"] == "http://influx.example:8086"
    assert "dashboard facility-overview.json: success /d/facility-overview" in capsys.readouterr().out

    assert main(["grafana", "push", "--url", url, "--token", "wrong"]) == 1
    assert "failed" in capsys.readouterr().err
