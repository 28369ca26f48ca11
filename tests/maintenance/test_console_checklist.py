"""A work order worked through the console's own pages and forms over real HTTP (session cookie, CSRF):
the checklist marked item by item, the resolve refused while an item is unmarked, then done."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from tests.api.test_accounts_api import token_of
from tests.conftest import Api

pytestmark = pytest.mark.services


class Page:
    """A logged-in visitor of the console: the session cookie, and the forms' CSRF token from the page."""

    def __init__(self, api: Api, token: str) -> None:
        self.http = httpx.Client(base_url=api.url, cookies={"facility_session": token}, timeout=10)
        self.html = ""

    def close(self) -> None:
        """Close its connections."""
        self.http.close()

    def open(self, path: str) -> str:
        """The page's HTML."""
        r = self.http.get(path)
        assert r.status_code == 200, r.text
        self.html = r.text
        return self.html

    def post(self, path: str, form: dict[str, str]) -> httpx.Response:
        """Post a form of the page with its CSRF token; a redirect is followed."""
        csrf = re.search(r'name="csrf" value="([^"]+)"', self.html)
        assert csrf is not None
        r = self.http.post(path, data={"csrf": csrf[1], **form}, follow_redirects=True)
        self.html = r.text
        return r

    def state(self, item: str) -> str:
        """How the page shows an item of the checklist: done, not_done or "" (not marked)."""
        found = re.search(rf'data-item="{re.escape(item)}" data-done="([a-z_]*)"', self.html)
        assert found is not None, item
        return found[1]


@pytest.fixture
def engineer(api: Api) -> Iterator[Page]:
    """The console as an engineer sees it."""
    page = Page(api, token_of(api, "eng", "engineer"))
    yield page
    page.close()


def test_an_engineer_marks_the_checklist_and_resolves_the_work_order(api: Api, engineer: Page) -> None:
    device = {"site": "s1", "device_id": "pump-1", "device_type": "water_pump", "location": "B1 pump room"}
    assert api.post("/api/v1/devices", device).status_code == 201
    plan = {"site": "s1", "name": "Pump service", "device_ids": ["pump-1"], "items": ["seal", "bearings"]}
    assert api.post("/api/v1/maintenance/plans", {**plan, "every": "P3M"}).status_code == 201
    [ticket] = api.get("/api/v1/tickets", params={"source": "maintenance"}).json()
    url = f"/tickets/{ticket['id']}"
    page = engineer
    html = page.open(url)
    assert 'data-testid="checklist"' in html and (page.state("seal"), page.state("bearings")) == ("", "")
    assert 'name="cause"' not in html, "planned work asks for no fault record"
    for action in ("acknowledge", "start"):
        assert page.post(f"{url}/{action}", {}).status_code == 200
    refused = page.post(f"{url}/resolve", {})
    assert refused.status_code == 409 and "seal, bearings" in refused.text
    no_note = {"item-0": "seal", "done-0": "done", "item-1": "bearings", "done-1": "not_done", "note-1": ""}
    r = page.post(f"{url}/checklist", no_note)
    assert r.status_code == 422 and "bearings: not done needs a note" in r.text
    assert page.post(f"{url}/checklist", {**no_note, "note-1": "worn; part ordered"}).status_code == 200
    assert (page.state("seal"), page.state("bearings")) == ("done", "not_done")
    assert page.post(f"{url}/resolve", {}).status_code == 200
    assert 'data-status="resolved"' in page.html and "done by eng" in page.html
    order = api.get(f"/api/v1/maintenance/work-orders/{ticket['id']}").json()
    assert order["done_by"] == "eng"
    assert order["checklist"][1] == {"item": "bearings", "done": False, "note": "worn; part ordered"}
    # Without the form's token, nothing is marked.
    r = page.http.post(f"{url}/checklist", data={"item-0": "seal", "done-0": ""})
    assert r.status_code == 403
