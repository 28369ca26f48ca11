"""The console of a running service in the session's browser (tests/conftest.py `browser`)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from accounts.roles import Role
from accounts.users import UserBook
from tests.conftest import Api

PASSWORD = "correct horse battery"
PHONE = {"width": 390, "height": 844}
DESK = {"width": 1280, "height": 900}
# The people of the tests: a user per role, and an engineer limited to site s2.
PEOPLE = {
    "eng": Role.ENGINEER,
    "boss": Role.MANAGER,
    "gina": Role.GUARD,
    "desk": Role.FRONT_DESK,
}


@pytest.fixture
def people(service: Any) -> dict[str, str]:
    """Accounts for the tests' people, each with the same password; `far` sees only site s2."""
    book = UserBook(service.db)
    for name, role in PEOPLE.items():
        book.add(name, PASSWORD, role)
    book.add("far", PASSWORD, Role.ENGINEER, ["s2"])
    return {name: PASSWORD for name in [*PEOPLE, "far"]}


class Console:
    """Opens pages of the console in fresh browser contexts, logged in as someone."""

    def __init__(self, browser: Any, api: Api) -> None:
        self.browser = browser
        self.api = api
        self.url = api.url
        self.contexts: list[Any] = []
        self.outside: list[str] = []

    def page(self, viewport: dict[str, int] = DESK, locale: str = "en-US") -> Any:
        """A new page in a context of its own; any request off this machine is refused and noted."""
        context = self.browser.new_context(viewport=viewport, locale=locale)
        self.contexts.append(context)

        def only_local(route: Any) -> None:
            if route.request.url.startswith(self.url):
                route.continue_()
            else:
                self.outside.append(route.request.url)
                route.abort()

        context.route("**/*", only_local)
        page = context.new_page()
        page.set_default_timeout(15_000)
        return page

    def login(self, name: str, viewport: dict[str, int] = DESK, locale: str = "en-US") -> Any:
        """A page logged in as `name`, on the ticket board."""
        page = self.page(viewport, locale)
        page.goto(self.url + "/login")
        page.get_by_label("User name").fill(name)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(self.url + "/")
        return page

    def close(self) -> None:
        """Close every context opened."""
        for context in self.contexts:
            context.close()


@pytest.fixture
def console(browser: Any, api: Api, people: dict[str, str]) -> Iterator[Console]:
    """The console of a running service, in the session's browser."""
    opened = Console(browser, api)
    yield opened
    opened.close()
    assert opened.outside == [], "the console asked for something off this machine"


@pytest.fixture
def screenshot() -> Callable[[Any, str], None]:
    """Saves a page's picture under FACILITY_SCREENSHOTS (the README's pictures), when it is set."""
    folder = os.environ.get("FACILITY_SCREENSHOTS")

    def take(page: Any, name: str) -> None:
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)

    return take
