"""GET /api/v1/reports/quality over real HTTP: the JSON figures, the CSV behind them, and site limits."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.api.test_accounts_api import token_of
from tests.conftest import Api

URL = "/api/v1/reports/quality"


def _worked(api: Api, site: str, severity: str, score: int | None = None) -> dict[str, Any]:
    """An occupant's report opened, worked, resolved with a cause class and closed with a score."""
    r = api.post("/api/v1/tickets", {"site": site, "title": "Lift stuck", "class": severity})
    assert r.status_code == 201, r.text
    url = f"/api/v1/tickets/{r.json()['id']}"
    for action in ("acknowledge", "start"):
        assert api.post(f"{url}/{action}").status_code == 200
    record: dict[str, object] = {"cause": "c", "measures": "m", "result": "r", "cause_class": "equipment"}
    if severity != "routine":
        record |= {"emergency_plan_started": True, "leadership_informed": True, "temporary_measures": "t"}
    assert api.post(f"{url}/resolve", record).status_code == 200
    close: dict[str, Any] = {"followup": "called back"} | ({"satisfaction": score} if score else {})
    r = api.post(f"{url}/close", close)
    assert r.status_code == 200, r.text
    return dict(r.json())


def _period() -> dict[str, str]:
    now = datetime.now(UTC)
    return {"from": (now - timedelta(days=1)).isoformat(), "to": (now + timedelta(minutes=1)).isoformat()}


def test_the_figures_as_json_and_the_csv_rows_behind_them(api: Api) -> None:
    _worked(api, "s1", "routine", 5)
    _worked(api, "s1", "emergency", 3)
    _worked(api, "s2", "major", 4)
    assert api.post("/api/v1/tickets", {"site": "s1", "title": "Door", "class": "major"}).status_code == 201

    r = api.get(URL, params={**_period(), "site": "s1"})
    assert r.status_code == 200, r.text
    f = r.json()
    assert f["sites"] == ["s1"] and f["percentile"] == "nearest rank"
    assert f["tickets"]["by_class"] == {"routine": 1, "major": 1, "emergency": 1}
    assert f["occupants"]["scored"] == 2 and f["occupants"]["share_satisfied"] == 0.5
    assert f["cause_classes"]["by_class"]["equipment"] == 2
    [emergency] = [t for t in f["timing"] if t["class"] == "emergency"]
    assert emergency["resolve"]["count"] == 1 and emergency["resolve"]["target_by"] == "product"
    assert emergency["acknowledge"]["target_by"] == "contract"
    assert [m["tickets"]["total"] for m in f["months"]] and sum(
        m["tickets"]["total"] for m in f["months"]
    ) == 3

    r = api.get(URL, params={**_period(), "site": "s1", "format": "csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == f["tickets"]["total"]
    for severity, n in f["tickets"]["by_class"].items():
        assert sum(row["class"] == severity for row in rows) == n
    assert sum(row["satisfied"] == "yes" for row in rows) == f["occupants"]["satisfied"]
    assert (
        sum(row["cause_class"] == "equipment" for row in rows) == f["cause_classes"]["by_class"]["equipment"]
    )

    everywhere = api.get(URL, params=_period()).json()
    assert everywhere["sites"] is None and everywhere["tickets"]["total"] == 4


def test_a_user_limited_to_a_site_gets_only_that_site(api: Api) -> None:
    _worked(api, "s1", "routine", 5)
    _worked(api, "s2", "routine", 1)
    token = token_of(api, "far", "manager", ("s2",))
    mine = api.get(URL, token=token, params=_period())
    assert mine.status_code == 200
    assert mine.json()["sites"] == ["s2"] and mine.json()["tickets"]["total"] == 1
    assert mine.json()["occupants"]["satisfied"] == 0
    rows = list(
        csv.DictReader(io.StringIO(api.get(URL, token=token, params={**_period(), "format": "csv"}).text))
    )
    assert {row["site"] for row in rows} == {"s2"}
    assert api.get(URL, token=token, params={**_period(), "site": "s1"}).status_code == 403
    assert api.get(URL, token=token_of(api, "gina", "guard"), params=_period()).status_code == 403


def test_a_period_that_makes_no_sense_is_refused(api: Api) -> None:
    now = datetime.now(UTC)
    backwards = {"from": now.isoformat(), "to": (now - timedelta(days=1)).isoformat()}
    assert api.get(URL, params=backwards).status_code == 422
    too_long = {"from": (now - timedelta(days=800)).isoformat(), "to": now.isoformat()}
    assert api.get(URL, params=too_long).status_code == 422
    assert api.get(URL, params={"format": "xml"}).status_code == 422
    assert api.get(URL, params={"site": "S 1"}).status_code == 422
