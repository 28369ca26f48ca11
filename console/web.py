"""Rendering the console's pages: templates, the visitor's language, and the words of enums."""

from __future__ import annotations

import functools
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse

from console.i18n import LANGUAGES, choose, translator
from console.session import Visitor

if TYPE_CHECKING:
    from fastapi.templating import Jinja2Templates

HERE = Path(__file__).parent


@functools.cache
def templates() -> Jinja2Templates:
    """The pages' templates, loaded at the first page rendered.

    Jinja2 is about 2 MB that a service nobody opens the console of (a worker of a partitioned
    fleet, say) never needs.
    """
    from fastapi.templating import Jinja2Templates

    return Jinja2Templates(directory=HERE / "templates")


def _local(request: Request) -> Any:
    zone = ZoneInfo(request.app.state.settings.timezone)

    def local(t: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
        """A time in the site's zone, or a dash."""
        return t.astimezone(zone).strftime(fmt) if t is not None else "—"

    return local


def render(
    request: Request, template: str, visitor: Visitor | None, status_code: int = 200, **context: Any
) -> HTMLResponse:
    """A page or a fragment in the visitor's language, with their CSRF token for its forms."""
    language = choose(request)
    values = {
        "t": translator(language),
        "lang": language,
        "languages": LANGUAGES,
        "visitor": visitor,
        "csrf": visitor.csrf if visitor else context.pop("csrf", None),
        "local": _local(request),
        "path": request.url.path,
        **context,
    }
    return templates().TemplateResponse(request, template, values, status_code=status_code)
