"""The monthly quality report: the console's printable page, and the PDF `facility report` prints."""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from console.i18n import translator
from facility.cli import main
from ground.severity import Severity
from records.db import Database, database_url, migrate
from records.devices import DeviceDirectory
from records.states import CauseClass, Source
from tests.conftest import CHROMIUM, Api
from tests.console.conftest import Console
from tickets.lifecycle import Action
from tickets.service import ActionFields, NewTicket, TicketService

TITLE_ZH = "月度服務品質報告"


def _worked(api: Api, site: str, severity: str, device: str | None = None, score: int | None = None) -> None:
    """An occupant's report opened, worked and closed through the API."""
    body = {"site": site, "title": "Lift stuck", "class": severity} | (
        {"device_id": device} if device else {}
    )
    r = api.post("/api/v1/tickets", body)
    assert r.status_code == 201, r.text
    url = f"/api/v1/tickets/{r.json()['id']}"
    for action in ("acknowledge", "start"):
        assert api.post(f"{url}/{action}").status_code == 200
    record: dict[str, object] = {"cause": "c", "measures": "m", "result": "r", "cause_class": "equipment"}
    if severity != "routine":
        record |= {"emergency_plan_started": True, "leadership_informed": True, "temporary_measures": "t"}
    assert api.post(f"{url}/resolve", record).status_code == 200
    close: dict[str, Any] = {"followup": "called back"} | ({"satisfaction": score} if score else {})
    assert api.post(f"{url}/close", close).status_code == 200


def test_a_manager_reads_the_months_report_and_a_limited_user_only_their_site(
    console: Console, api: Api, screenshot: Callable[[Any, str], None]
) -> None:
    device = {"site": "s1", "device_id": "elev-1", "device_type": "elevator", "location": "Tower A"}
    assert api.post("/api/v1/devices", device).status_code == 201
    for _ in range(3):
        _worked(api, "s1", "routine", "elev-1", 5)
    _worked(api, "s1", "major", None, 2)
    _worked(api, "s2", "routine", None, 4)
    month = datetime.now(UTC).strftime("%Y-%m")

    page = console.login("boss")
    page.get_by_role("navigation").get_by_role("link", name="Quality").click()
    page.wait_for_url(f"{console.url}/reports/monthly")
    page.get_by_label("Site").select_option("s1")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url(f"{console.url}/reports/monthly?site=s1&month={month}")
    assert page.get_by_test_id("report-title").inner_text() == "Monthly service quality report"
    assert page.get_by_test_id("tickets-total").inner_text() == "4"
    assert page.get_by_test_id("share-satisfied").inner_text() == "75 %"
    assert page.locator("[data-testid=bad-actors] td").first.inner_text() == "elev-1"
    assert page.locator("[data-testid=timing] tr[data-class=major] td").count() == 8
    assert page.locator("svg[role=img]").count() == 3
    csv = page.get_by_test_id("csv").get_attribute("href")
    rows = page.request.get(f"{console.url}{csv}")  # with the page's session
    assert rows.status == 200 and len(rows.text().strip().splitlines()) == 1 + 4
    screenshot(page, "monthly-report")

    far = console.login("far")
    far.goto(f"{console.url}/reports/monthly")
    assert "site: s2" in far.get_by_test_id("monthly-report").inner_text().lower()
    assert far.get_by_test_id("tickets-total").inner_text() == "1"
    assert far.goto(f"{console.url}/reports/monthly?site=s1").status == 404
    guard = console.login("gina")
    assert guard.get_by_role("navigation").get_by_role("link", name="Quality").count() == 0
    assert guard.goto(f"{console.url}/reports/monthly").status == 403


def _november(data_dir: Path) -> None:
    """A November of tickets in the records of `data_dir`, at known times."""
    db = Database(database_url(None, data_dir))
    migrate(db.engine)
    now = [datetime(2026, 11, 3, 9, 0, tzinfo=UTC)]
    tickets = TicketService(db, clock=lambda: now[0])
    DeviceDirectory(db).register({"site": "s1", "device_id": "pump-1", "device_type": "water_pump"})
    for hour in (9, 10, 11):
        now[0] = datetime(2026, 11, 3, hour, tzinfo=UTC)
        new = NewTicket(
            site="s1", title="水泵漏水", severity=Severity.MAJOR, device_id="pump-1", source=Source.OCCUPANT
        )
        t = tickets.open_ticket(new, "desk")
        for action in (Action.ACKNOWLEDGE, Action.START):
            tickets.act(t.id, action, ActionFields(), "eng")
        done = ActionFields(
            cause="c",
            measures="m",
            result="r",
            emergency_plan_started=True,
            leadership_informed=True,
            cause_class=CauseClass.EQUIPMENT,
        )
        tickets.act(t.id, Action.RESOLVE, done, "eng")
        tickets.act(t.id, Action.CLOSE, ActionFields(followup="called", satisfaction=4), "desk")
    db.close()


def test_the_command_prints_the_report_to_pdf_with_its_chinese_title(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    from pypdf import PdfReader

    monkeypatch.setenv("FACILITY_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FACILITY_CHROMIUM", CHROMIUM)
    _november(tmp_path / "data")
    pdf, html = tmp_path / "report.pdf", tmp_path / "report.html"
    assert main(["report", "--site", "s1", "--month", "2026-11", "--pdf", str(pdf), "--html", str(html)]) == 0
    assert pdf.read_bytes().startswith(b"%PDF")
    # The CJK font maps some characters to their Kangxi radical forms (⽉ for 月): NFKC folds them back.
    text = unicodedata.normalize("NFKC", "\n".join(page.extract_text() for page in PdfReader(pdf).pages))
    assert TITLE_ZH in text
    assert "s1" in text and "2026-11" in text
    assert "pump-1" in text  # three tickets in the month: a repeat fault
    assert unicodedata.normalize("NFKC", translator("zh-Hant")("q_signature")) in text
    assert main(["report", "--site", "s1", "--month", "2026-13", "--pdf", str(pdf)]) == 2
