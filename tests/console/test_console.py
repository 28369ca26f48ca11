"""The console in a real browser: log in, a fault arrives live and is worked to closed, patrols, limits."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.conftest import Api, Publisher, wait_until
from tests.console.conftest import PASSWORD, PHONE, Console

pytestmark = pytest.mark.services

SUMP = "facility/v1/s1/sump_pit/sump-1/telemetry"
READER = "facility/v1/s1/patrol_reader/reader-1/event"


def _ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def _sump_flooding(api: Api, publisher: Publisher) -> None:
    """A registered sump pit rising to 97 % over MQTT: an emergency (緊急) ticket, `sump_flooding`."""
    device = {
        "site": "s1",
        "device_id": "sump-1",
        "device_type": "sump_pit",
        "name": "Sump pit 1",
        "building": "Tower A",
        "floor": "B2",
        "location": "Car park B2, by the north ramp",
    }
    assert api.post("/api/v1/devices", device).status_code == 201
    now = _ms(datetime.now(UTC))
    levels = [41.0, 48.5, 57.0, 66.0, 78.5, 88.0, 97.0]
    readings = [
        {
            "ts": now - (len(levels) - 1 - i) * 5_000,
            "seq": i,
            "metrics": {"level_pct": level, "pumps_running": 2.0, "pumps_faulted": 0.0},
        }
        for i, level in enumerate(levels)
    ]
    publisher.publish_all([(SUMP, reading) for reading in readings])
    # The rules can open the ticket before the collector has stored the last reading; a page
    # opened in between would rightly show no readings yet.
    wait_until(lambda: _latest_level(api) == 97.0, what="the sump's last reading to be stored")
    wait_until(
        lambda: len(api.get("/api/v1/devices/s1/sump-1/history?metric=level_pct").json()) == len(levels),
        what="the sump's levels to be in the time-series store",
    )


def _latest_level(api: Api) -> object:
    """The stored latest level of sump-1, or None before the collector has it."""
    [device] = [d for d in api.get("/api/v1/devices").json() if d["device_id"] == "sump-1"]
    return (device.get("latest") or {}).get("level_pct")


def test_log_in_by_keyboard_and_log_out(console: Console) -> None:
    page = console.page()
    page.goto(console.url + "/tickets/1")
    assert page.url.startswith(console.url + "/login?next=")
    page.get_by_label("User name").fill("eng")
    page.get_by_label("Password").fill("wrong password")
    page.keyboard.press("Enter")
    assert page.get_by_role("alert").inner_text() == "Wrong user name or password."
    # The keyboard alone: the fields follow each other, Enter sends the form.
    page.get_by_label("User name").focus()
    page.keyboard.type("eng")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*/tickets/1$"))
    cookie = next(c for c in page.context.cookies() if c["name"] == "facility_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    page.goto(console.url + "/")
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(console.url + "/login")
    page.goto(console.url + "/")
    assert page.url == console.url + "/login"


def test_a_fault_appears_live_and_is_worked_to_closed_through_the_page(
    console: Console, api: Api, publisher: Publisher, screenshot: Callable[[Any, str], None]
) -> None:
    page = console.login("eng")
    page.evaluate("window.sameDocument = true")
    _sump_flooding(api, publisher)
    row = page.locator("table.tickets tr.c-emergency").first
    row.wait_for()
    # Still the same document: the row came by server-sent events, not a reload.
    assert page.evaluate("window.sameDocument") is True
    assert page.locator('[data-count="emergency-open"]').inner_text() == "1"
    [ticket] = api.get("/api/v1/tickets").json()
    screenshot(page, "ticket-board")

    row.get_by_role("link", name=f"#{ticket['id']}").click()
    page.wait_for_url(f"{console.url}/tickets/{ticket['id']}")
    url = page.url
    # Where it is, the device's latest readings, and a chart of the level that raised it.
    assert page.get_by_test_id("location").inner_text() == "Tower A, floor B2, Car park B2, by the north ramp"
    assert "Tower A" in page.locator("dl.facts").first.inner_text()
    assert "97.0" in page.locator("dl.readings").inner_text()
    page.locator(".chart[data-points]").wait_for()
    assert page.locator(".chart").get_attribute("data-points") == str(7)
    assert page.locator(".chart canvas").count() == 1

    def act(action: str, **fields: str) -> None:
        form = page.locator(f'form[data-action="{action}"]')
        for name, value in fields.items():
            if value == "check":
                form.get_by_label(name).check()
            else:
                form.get_by_label(name).fill(value)
        form.get_by_role("button").click()
        page.wait_for_load_state()

    act("acknowledge")
    assert page.get_by_test_id("status").get_attribute("data-status") == "acknowledged"
    act("start")
    assert page.get_by_test_id("status").get_attribute("data-status") == "in_progress"
    # The lifecycle refuses to resolve an emergency before its steps are recorded, and says why.
    act("resolve", Cause="Blocked drain", **{"Measures taken": "Cleared it", "Result": "Level at 30 %"})
    refused = page.get_by_test_id("refused").inner_text()
    assert "emergency_plan_started" in refused and "cannot be resolved" in refused
    assert page.get_by_test_id("status").get_attribute("data-status") == "in_progress"
    act(
        "resolve",
        **{
            "Emergency plan started": "check",
            "Leadership informed": "check",
            "Temporary measures": "Portable pump brought in, B2 ramp closed",
            "Cause": "Leaves blocking the drain inlet",
            "Measures taken": "Cleared the inlet, both pumps checked",
            "Result": "Level back to 30 %",
        },
    )
    assert page.get_by_test_id("status").get_attribute("data-status") == "resolved"
    screenshot(page, "ticket")
    act("close")
    assert page.url == url
    assert page.get_by_test_id("status").get_attribute("data-status") == "closed"

    seen = api.get(f"/api/v1/tickets/{ticket['id']}").json()
    assert seen["status"] == "closed"
    assert seen["temporary_measures"] == "Portable pump brought in, B2 ramp closed"
    assert seen["cause"] == "Leaves blocking the drain inlet"
    by_eng = [a["action"] for a in seen["audit"] if a["actor"] == "eng"]
    assert by_eng == ["acknowledge", "start", "resolve", "close"]


def test_a_guard_on_a_phone_sees_their_round_update_after_a_scan(
    console: Console, api: Api, publisher: Publisher
) -> None:
    for i, name in enumerate(("Gate", "Car park B2")):
        cp = {"id": f"cp-{i}", "site": "s1", "name": name, "tag": f"tag-{i}"}
        assert api.post("/api/v1/patrol/checkpoints", cp).status_code == 201
    stops = [{"checkpoint": "cp-0", "after_min": 0}, {"checkpoint": "cp-1", "after_min": 30}]
    route = {"id": "night", "site": "s1", "name": "Night", "checkpoints": stops}
    assert api.post("/api/v1/patrol/routes", route).status_code == 201
    start = datetime.now(UTC)
    walk = {"route": "night", "guard": "gina", "start": start.isoformat()}
    assert api.post("/api/v1/patrol/rounds", walk).status_code == 201

    page = console.login("gina", viewport=PHONE)
    page.get_by_role("link", name="My round").click()
    assert page.get_by_test_id("next-due").inner_text().startswith("Next due: Gate")
    gate = page.locator('li[data-checkpoint="cp-0"]')
    assert gate.get_attribute("data-status") == "pending"
    page.evaluate("window.sameDocument = true")
    scan = {"ts": _ms(datetime.now(UTC)), "code": "PATROL_SCAN", "detail": {"tag": "tag-0", "guard": "gina"}}
    publisher.publish_all([(READER, scan)])
    page.locator('li[data-checkpoint="cp-0"][data-status="on_time"]').wait_for()
    assert page.evaluate("window.sameDocument") is True
    assert page.get_by_test_id("next-due").inner_text().startswith("Next due: Car park B2")
    # A phone's width: nothing wider than the screen.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def test_the_front_desk_files_an_occupants_report_and_follows_it(console: Console, api: Api) -> None:
    device = {"site": "s1", "device_id": "tank-1", "device_type": "water_tank", "location": "Roof"}
    assert api.post("/api/v1/devices", device).status_code == 201
    maintenance = {"site": "s1", "title": "Repaint", "source": "maintenance"}
    assert api.post("/api/v1/tickets", maintenance).status_code == 201
    page = console.login("desk")
    nav = page.get_by_role("navigation")
    assert nav.get_by_role("link", name="Devices").count() == 0
    assert page.locator("table.tickets").count() == 0, "the front desk sees occupants' reports only"
    nav.get_by_role("link", name="Occupant report").click()
    page.get_by_label("Site").select_option("s1")
    page.get_by_label("Device (optional)").select_option("tank-1")
    page.get_by_label("Location").fill("Roof, Tower A")
    page.get_by_label("What was reported").fill("Water tastes of rust")
    page.get_by_label("Contact (name, unit, phone)").fill("Mrs Chan, 12B, 5550 1234")
    page.get_by_role("button", name="File the report").click()
    page.wait_for_url(re.compile(r".*/tickets/\d+\?filed=1$"))
    assert "Report filed as ticket" in page.get_by_role("status").inner_text()
    assert page.locator("form[data-action]").count() == 0, "the front desk does not work tickets"
    ticket_id = int(page.url.split("/tickets/")[1].split("?")[0])
    seen = api.get(f"/api/v1/tickets/{ticket_id}").json()
    assert (seen["source"], seen["reporter"], seen["device_id"]) == (
        "occupant",
        "Mrs Chan, 12B, 5550 1234",
        "tank-1",
    )
    # A second report about the same tank joins the open ticket rather than opening another.
    page.goto(console.url + "/report")
    page.get_by_label("Site").select_option("s1")
    page.get_by_label("Device (optional)").select_option("tank-1")
    page.get_by_label("What was reported").fill("Rusty water on the 14th floor too")
    page.get_by_label("Contact (name, unit, phone)").fill("Mr Lee, 14A")
    page.get_by_role("button", name="File the report").click()
    page.wait_for_url(re.compile(rf".*/tickets/{ticket_id}\?joined=1$"))
    assert f"#{ticket_id} was already open" in page.get_by_role("status").inner_text()
    assert api.get(f"/api/v1/tickets/{ticket_id}").json()["occurrences"] == 2
    # Its progress, as the engineers work it.
    assert api.post(f"/api/v1/tickets/{ticket_id}/acknowledge").status_code == 200
    page.goto(console.url + "/report")
    assert page.locator(f"#report-{ticket_id} [data-status]").inner_text() == "Acknowledged"


def test_a_user_limited_to_one_site_never_sees_another(console: Console, api: Api) -> None:
    near = api.post("/api/v1/tickets", {"site": "s2", "title": "Lift noise"}).json()
    far = api.post("/api/v1/tickets", {"site": "s1", "title": "Leak in B1"}).json()
    page = console.login("far")
    shown = page.locator("table.tickets tbody tr")
    assert shown.count() == 1 and "Lift noise" in shown.inner_text()
    assert page.get_by_label("Site").locator("option").all_inner_texts() == ["Any", "s2"]
    answer = page.goto(f"{console.url}/tickets/{far['id']}")
    assert answer is not None and answer.status == 404
    answer = page.goto(f"{console.url}/board/rows?site=s1")
    assert answer is not None and "Leak in B1" not in page.content()
    token = api.http.post("/api/v1/auth/login", json={"username": "far", "password": PASSWORD}).json()
    mine = api.get("/api/v1/tickets", token=token["access_token"]).json()
    assert [t["id"] for t in mine] == [near["id"]]
    assert api.get(f"/api/v1/tickets/{far['id']}", token=token["access_token"]).status_code == 404


def test_a_form_posted_without_its_csrf_token_is_refused(console: Console, api: Api) -> None:
    ticket = api.post("/api/v1/tickets", {"site": "s1", "title": "Leak"}).json()
    page = console.login("eng")
    # The browser's own session cookie goes along; only the form's token is missing, then wrong.
    for form in ({}, {"csrf": "not-the-token"}):
        answer = page.request.post(f"{console.url}/tickets/{ticket['id']}/acknowledge", form=form)
        assert answer.status == 403, answer.text()
        assert "CSRF" in answer.json()["detail"]
    assert api.get(f"/api/v1/tickets/{ticket['id']}").json()["status"] == "open"
    # The page's own form carries it.
    page.goto(f"{console.url}/tickets/{ticket['id']}")
    page.locator('form[data-action="acknowledge"]').get_by_role("button").click()
    page.wait_for_load_state()
    assert api.get(f"/api/v1/tickets/{ticket['id']}").json()["status"] == "acknowledged"


def test_five_failed_log_ins_lock_the_user_at_that_address(console: Console) -> None:
    page = console.page()
    page.goto(console.url + "/login")
    for _ in range(5):
        page.get_by_label("User name").fill("boss")
        page.get_by_label("Password").fill("guess")
        page.get_by_role("button", name="Log in").click()
        assert page.get_by_role("alert").inner_text() == "Wrong user name or password."
    page.get_by_label("User name").fill("boss")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    assert page.get_by_role("alert").inner_text().startswith("Too many failed log-ins")
    assert page.url.startswith(console.url + "/login")
    # Another user from the same address is not locked.
    console.login("eng")


def test_headers_language_and_assets_served_by_the_product(console: Console) -> None:
    page = console.page(locale="zh-TW")
    answer = page.goto(console.url + "/login")
    assert answer is not None
    csp = answer.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert answer.headers["x-frame-options"] == "DENY"
    # The browser's language chooses first: Traditional Chinese.
    assert page.get_by_role("button", name="登入").count() == 1
    page.get_by_label("使用者名稱").fill("eng")
    page.get_by_label("密碼").fill(PASSWORD)
    page.get_by_role("button", name="登入").click()
    page.wait_for_url(console.url + "/")
    assert page.get_by_role("heading", level=1).inner_text() == "工單"
    page.get_by_role("link", name="English").click()
    page.wait_for_url(console.url + "/")
    assert page.get_by_role("heading", level=1).inner_text() == "Tickets"
    scripts = page.eval_on_selector_all("script[src]", "els => els.map(e => e.src)")
    assert scripts and all(s.startswith(console.url + "/static/") for s in scripts)
    assert page.locator("script:not([src])").count() == 0


def test_the_api_docs_open_without_internet(console: Console) -> None:
    page = console.page()
    page.goto(console.url + "/docs")
    page.locator(".opblock").first.wait_for()
    assert page.locator(".opblock").count() > 20


def test_a_session_cookie_is_refused_once_logged_out(console: Console, api: Api) -> None:
    page = console.login("eng")
    session = next(c["value"] for c in page.context.cookies() if c["name"] == "facility_session")
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(console.url + "/login")
    answer = httpx.get(console.url + "/", cookies={"facility_session": session}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/login"
