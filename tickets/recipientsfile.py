"""The recipients file: who is told of tickets, per site or `*`, checked whole; read again when it changes.

```yaml
version: 1
sites:
  "*":                       # every site, unless a site names the duty itself
    leadership:
      - {name: Operations director, url: "https://pager.example/hooks/director", user: chan}
  site-01:
    duty_engineer:
      - {name: Site 01 engineer on duty, url: "https://pager.example/hooks/s01-eng"}
    duty_manager:
      - {name: Site 01 duty manager, url: "https://pager.example/hooks/s01-mgr", user: wong}
```

The API (`PUT /api/v1/notifications/recipients`) takes the same document as JSON and writes the
file; a file edited by hand is read again at the next notification after it changed.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from ground.contract import SITE_OR_DEVICE_ID
from ground.datafiles import Checker, Place, ProblemsError, read_yaml
from tickets.recipients import ANY_SITE, CHAIN, Duty, Recipient, RecipientBook

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
_TOP_KEYS = ("version", "sites")
_RECIPIENT_KEYS = ("name", "url", "user")
_USER = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")  # accounts.users.USERNAME
_ROOT = Place()


class RecipientsError(ProblemsError):
    """A recipients document that cannot be used; `problems` names every fault with its place."""


def check(doc: Any, source: str) -> RecipientBook:
    """The book a parsed document describes, or RecipientsError naming every problem."""
    checker = Checker()
    book = _book(checker, doc)
    if checker.problems or book is None:
        raise RecipientsError(checker.problems, source)
    return book


def read(text: str, source: str) -> RecipientBook:
    """The book of a recipients file's text."""
    return check(read_yaml(text, source, RecipientsError), source)


def document(book: RecipientBook) -> dict[str, Any]:
    """The document of a book: what the file holds and the API shows."""
    sites: dict[str, Any] = {}
    for site, by_duty in book.sites.items():
        sites[site] = {
            duty.value: [
                {"name": r.name, "url": r.url} | ({"user": r.user} if r.user else {}) for r in by_duty[duty]
            ]
            for duty in CHAIN
            if duty in by_duty
        }
    return {"version": FORMAT_VERSION, "sites": sites}


def _book(checker: Checker, doc: Any) -> RecipientBook | None:
    if not checker.mapping(_ROOT, doc, _TOP_KEYS, required=("version", "sites")):
        return None
    if doc["version"] != FORMAT_VERSION:
        checker.add(_ROOT / "version", f"{doc['version']!r}: this program reads version {FORMAT_VERSION}")
    sites_doc = doc["sites"]
    if not isinstance(sites_doc, dict):
        checker.add(_ROOT / "sites", "must be a mapping of site ids (or '*') to duties")
        return None
    sites: dict[str, dict[Duty, tuple[Recipient, ...]]] = {}
    for site, duties_doc in sites_doc.items():
        at = _ROOT / "sites" / site
        if site != ANY_SITE and not (isinstance(site, str) and SITE_OR_DEVICE_ID.fullmatch(site)):
            checker.add(at, f"{site!r} is not a site id or '*'")
            continue
        if not checker.mapping(at, duties_doc, [d.value for d in CHAIN]):
            continue
        known = {d.value for d in CHAIN}
        sites[site] = {
            Duty(duty): _recipients(checker, at / duty, listed)
            for duty, listed in duties_doc.items()
            if duty in known
        }
    return RecipientBook(sites)


def _recipients(checker: Checker, at: Place, listed: Any) -> tuple[Recipient, ...]:
    if not isinstance(listed, list):
        checker.add(at, "must be a list of recipients, each with name and url")
        return ()
    found = []
    for n, item in enumerate(listed):
        here = at[n]
        if not checker.mapping(here, item, _RECIPIENT_KEYS, required=("name", "url")):
            continue
        name, url, user = item["name"], item["url"], item.get("user")
        if not isinstance(name, str) or not name.strip() or len(name) > 200:
            checker.add(here / "name", "must be a text of 1 to 200 characters")
            continue
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc or len(url) > 2000:
            checker.add(here / "url", f"{url!r} is not an http(s):// URL")
            continue
        if user is not None and not (isinstance(user, str) and _USER.fullmatch(user)):
            checker.add(here / "user", f"{user!r} is not a user name")
            continue
        found.append(Recipient(name.strip(), url, user))
    return tuple(found)


class RecipientsFile:
    """The recipients file of a running service: read at start, again when it changes, written by the API."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._book = RecipientBook()
        if path.exists():
            self._book = read(path.read_text(encoding="utf-8"), str(path))
            self._stamp = self._stat()

    def _stat(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def book(self) -> RecipientBook:
        """The recipients now; a file changed by hand is read again (kept as it was if it is refused)."""
        with self._lock:
            stamp = self._stat()
            if stamp != self._stamp:
                self._stamp = stamp
                try:
                    self._book = (
                        read(self.path.read_text(encoding="utf-8"), str(self.path))
                        if stamp
                        else RecipientBook()
                    )
                except (OSError, ProblemsError) as exc:
                    log.error("recipients file not read again, the last good one stays: %s", exc)
            return self._book

    def replace(self, doc: Any) -> RecipientBook:
        """Check a document and make it the file (written whole, then renamed into place)."""
        book = check(doc, "recipients")
        text = "# Who is told of tickets; written by PUT /api/v1/notifications/recipients.\n"
        text += yaml.safe_dump(document(book), sort_keys=False, allow_unicode=True)
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            draft = self.path.with_name(self.path.name + ".new")
            with open(draft, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(draft, self.path)
            self._book, self._stamp = book, self._stat()
        return book
