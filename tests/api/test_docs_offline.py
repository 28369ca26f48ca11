"""`/docs` works without internet: Swagger UI's files come from the product, and a real browser renders it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from api.docs import serve_docs
from tests.servers import free_port

# What each asset must be: content types, and a size no error page or stub would reach.
ASSETS = {
    ".js": (("text/javascript", "application/javascript"), 500_000),
    ".css": (("text/css",), 50_000),
    ".png": (("image/png",), 200),
}


def small_app() -> FastAPI:
    """An app as the service makes it: no default docs, then `serve_docs`."""
    app = FastAPI(title="facility", docs_url=None, redoc_url=None)

    @app.get("/api/v1/things", tags=["things"], summary="Every thing")
    def things() -> list[str]:
        return ["a"]

    serve_docs(app)
    return app


class _Links(HTMLParser):
    """Every src and href of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls.extend(v for k, v in attrs if k in ("src", "href") and v is not None)


def _links(html: str) -> list[str]:
    parser = _Links()
    parser.feed(html)
    return parser.urls


class Served:
    """The small app over real HTTP on a free port of 127.0.0.1, as `facility serve` runs it."""

    def __init__(self, root_path: str = "") -> None:
        port = free_port()
        config = uvicorn.Config(
            small_app(), host="127.0.0.1", port=port, log_level="warning", root_path=root_path
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise TimeoutError("the API did not start")
            time.sleep(0.02)
        self.url = f"http://127.0.0.1:{port}"
        self.http = httpx.Client(base_url=self.url, timeout=10)

    def close(self) -> None:
        """Stop the server."""
        self.http.close()
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def served() -> Iterator[Served]:
    """The small app on a server of this test's own."""
    running = Served()
    yield running
    running.close()


def test_docs_ask_only_for_this_server_and_each_asset_is_there(served: Served) -> None:
    client = served.http
    page = client.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    urls = _links(page.text)
    assert len(urls) == 3, urls  # the script, the style sheet and the icon
    for url in urls:
        assert url.startswith("/static/api/swagger/") and not url.startswith("//"), url
    assert "http://" not in page.text and "https://" not in page.text and "//cdn" not in page.text
    for url in urls:
        answer = client.get(url)
        types, min_size = ASSETS[Path(url).suffix]
        assert answer.status_code == 200, url
        assert answer.headers["content-type"].split(";")[0] in types, (url, answer.headers["content-type"])
        assert len(answer.content) > min_size, url
    assert "url: '/openapi.json'" in page.text
    assert client.get("/openapi.json").json()["paths"].keys() == {"/api/v1/things"}


def test_the_oauth2_redirect_is_served_and_nothing_of_the_docs_is_in_the_schema(served: Served) -> None:
    client = served.http
    redirect = client.get("/docs/oauth2-redirect")
    assert redirect.status_code == 200 and "oauth2" in redirect.text.lower()
    assert "oauth2RedirectUrl: window.location.origin + '/docs/oauth2-redirect'" in client.get("/docs").text
    assert client.get("/redoc").status_code == 404
    assert list(client.get("/openapi.json").json()["paths"]) == ["/api/v1/things"]


def test_behind_a_prefix_the_page_asks_for_the_prefixed_urls() -> None:
    # A proxy that serves the API under /facility strips the prefix on the way in.
    behind = Served(root_path="/facility")
    try:
        text = behind.http.get("/docs").text
        assert {u.rsplit("/", 1)[0] for u in _links(text)} == {"/facility/static/api/swagger"}
        assert "url: '/facility/openapi.json'" in text
    finally:
        behind.close()


def test_the_license_of_the_shipped_files_is_there(served: Served) -> None:
    client = served.http
    for name in ("LICENSE", "NOTICE", "swagger-ui-bundle.js.LICENSE.txt"):
        answer = client.get(f"/static/api/swagger/{name}")
        assert answer.status_code == 200 and answer.text.strip(), name
    assert "Apache License" in client.get("/static/api/swagger/LICENSE").text


def test_a_browser_cut_off_from_the_internet_renders_the_operations(served: Served, browser: Any) -> None:
    from playwright.sync_api import Route

    outside: list[str] = []

    def only_this_server(route: Route) -> None:
        if route.request.url.startswith(served.url + "/"):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    context = browser.new_context()
    try:
        page = context.new_page()
        page.route("**/*", only_this_server)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(served.url + "/docs")
        page.wait_for_selector(".opblock", timeout=20_000)
        assert page.locator(".opblock-summary-path").first.inner_text() == "/api/v1/things"
        assert page.locator(".opblock-summary-description").first.inner_text() == "Every thing"
    finally:
        context.close()
    assert outside == [], "the page asked for something off this server"
    assert errors == []
