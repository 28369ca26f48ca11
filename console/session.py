"""Console sessions: a log-in's token in an HttpOnly cookie, a CSRF token for each form, the visitor."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, HTTPException, Request, status
from starlette.responses import Response

from accounts.roles import Caller, Role
from api.auth import TokenBook

SESSION_COOKIE = "facility_session"
LOGIN_CSRF_COOKIE = "facility_login_csrf"
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"


def csrf_for(session_token: str) -> str:
    """A session's CSRF token: derived from the session's secret, so only its holder can know it."""
    return hmac.new(session_token.encode(), b"facility console csrf", hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Visitor:
    """A logged-in person at the console."""

    caller: Caller
    token: str

    @property
    def csrf(self) -> str:
        """The token every form of this session carries."""
        return csrf_for(self.token)

    @property
    def role(self) -> Role:
        """The visitor's role."""
        return self.caller.role


class LoginNeeded(Exception):
    """No valid session: the visitor is sent to the log-in page."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


def visitor_of(request: Request) -> Visitor | None:
    """The visitor of this request, or None without a valid session cookie."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    book: TokenBook = request.app.state.tokens
    caller = book.caller(token)
    return Visitor(caller, token) if caller is not None else None


async def signed_in(request: Request) -> Visitor:
    """The visitor; else LoginNeeded, which answers with the log-in page."""
    visitor = visitor_of(request)
    if visitor is None:
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginNeeded(path)
    return visitor


async def checked(request: Request, visitor: Annotated[Visitor, Depends(signed_in)]) -> Visitor:
    """The visitor of a form post whose CSRF token matches the session's; else 403."""
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        form = await request.form()
        field = form.get(CSRF_FIELD)
        sent = field if isinstance(field, str) else None
    if not sent or not hmac.compare_digest(sent, visitor.csrf):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the form's CSRF token is missing or wrong")
    return visitor


def login_page_for(next_path: str) -> str:
    """The log-in page's address, coming back to `next_path`."""
    return "/login" if next_path in ("", "/") else f"/login?next={quote(next_path, safe='')}"


def safe_next(next_path: str | None) -> str:
    """Where to go after a log-in: a path of this site only, never another host."""
    if not next_path or not next_path.startswith("/") or next_path.startswith("//") or "\\" in next_path:
        return "/"
    return next_path


def set_session(response: Response, request: Request, token: str, expires_at: datetime) -> None:
    """Put the session in its cookie: HttpOnly, SameSite=Lax, Secure behind HTTPS, ending with the session."""
    response.set_cookie(
        SESSION_COOKIE,
        token,
        expires=expires_at,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )


def clear_session(response: Response) -> None:
    """Remove the session cookie."""
    response.delete_cookie(SESSION_COOKIE, path="/")


def login_csrf(request: Request) -> str:
    """The log-in form's CSRF token: kept in a cookie of its own until there is a session."""
    return request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(24)


def set_login_csrf(response: Response, request: Request, token: str) -> None:
    """Keep the log-in form's CSRF token in its cookie."""
    response.set_cookie(
        LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=request.url.scheme == "https"
    )
