"""`facility grafana push`: the data source and every dashboard into a running Grafana, idempotently.

The data source is found by its uid (else its name) and updated, or created; each dashboard is
saved with `overwrite`, so its uid keeps one copy. Dashboards go into the folder "Facility", as
the provisioned ones do.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from grafana_client import GrafanaApi
from grafana_client.client import GrafanaClientError

from grafana.dashboards import all_dashboards, render
from grafana.influxql import DATASOURCE_UID

DATASOURCE_NAME = "InfluxDB (facility)"
FOLDER_UID = "facility"
FOLDER_TITLE = "Facility"


@dataclass(frozen=True)
class InfluxSource:
    """Where Grafana reads the readings: InfluxDB's URL as Grafana sees it, the database, a token."""

    url: str
    database: str
    token: str = ""  # InfluxDB 2.x/3.x: sent as `Authorization: Token ...`
    username: str | None = None  # InfluxDB 1.x with authentication
    password: str | None = None


def datasource_body(source: InfluxSource) -> dict[str, Any]:
    """The data source as Grafana's API takes it: InfluxQL, the same uid the dashboards name."""
    body: dict[str, Any] = {
        "uid": DATASOURCE_UID,
        "name": DATASOURCE_NAME,
        "type": "influxdb",
        "access": "proxy",
        "url": source.url,
        "isDefault": True,
        "jsonData": {"version": "InfluxQL", "dbName": source.database, "httpMode": "POST"},
        "secureJsonData": {},
    }
    if source.token:
        body["jsonData"]["httpHeaderName1"] = "Authorization"
        body["secureJsonData"]["httpHeaderValue1"] = f"Token {source.token}"
    if source.username:
        body["user"] = source.username
        body["secureJsonData"]["password"] = source.password or ""
    return body


def _missing(exc: GrafanaClientError) -> bool:
    return bool(exc.status_code == 404)


def push_datasource(api: GrafanaApi, source: InfluxSource) -> tuple[str, str]:
    """Update the data source found by uid or name, or create it; returns what was done, and its uid."""
    body = datasource_body(source)
    lookups = (
        (api.datasource.get_datasource_by_uid, DATASOURCE_UID),
        (api.datasource.get_datasource_by_name, DATASOURCE_NAME),
    )
    for find, key in lookups:
        try:
            found = find(key)
        except GrafanaClientError as exc:
            if not _missing(exc):
                raise
            continue
        # A data source found by name keeps its uid: dashboards elsewhere may point at it.
        body["uid"] = found.get("uid") or DATASOURCE_UID
        api.datasource.update_datasource_by_uid(body["uid"], body)
        return "updated", str(body["uid"])
    api.datasource.create_datasource(body)
    return "created", DATASOURCE_UID


def ensure_folder(api: GrafanaApi) -> None:
    """Create the folder "Facility" unless it exists."""
    try:
        api.folder.get_folder(FOLDER_UID)
    except GrafanaClientError as exc:
        if not _missing(exc):
            raise
        api.folder.create_folder(FOLDER_TITLE, uid=FOLDER_UID)


def push(api: GrafanaApi, source: InfluxSource) -> list[str]:
    """The data source, the folder and every dashboard; returns a line per thing pushed."""
    done, uid = push_datasource(api, source)
    lines = [f"data source {uid}: {done}"]
    ensure_folder(api)
    for name, dashboard in all_dashboards().items():
        # The panels name their data source by uid: point them at the one found, whatever its uid.
        text = render(dashboard).replace(json.dumps(DATASOURCE_UID), json.dumps(uid))
        payload = {
            "dashboard": json.loads(text),
            "folderUid": FOLDER_UID,
            "overwrite": True,
            "message": "facility grafana push",
        }
        answer = api.dashboard.update_dashboard(payload)
        lines.append(f"dashboard {name}: {answer.get('status', 'saved')} {answer.get('url', '')}".rstrip())
    return lines


def connect(url: str, token: str, timeout_s: float = 10.0) -> GrafanaApi:
    """A client for Grafana at `url`, authenticated with a service account token (Bearer)."""
    return GrafanaApi.from_url(url, credential=token, timeout=timeout_s)
