"""Log-in, log-out and the choice of language."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.logins import LoginFailed, LoginLocked, Logins
from api.routes.auth import client_address
from console.i18n import LANGUAGE_COOKIE, LANGUAGES
from console.session import (
    CSRF_FIELD,
    LOGIN_CSRF_COOKIE,
    Visitor,
    checked,
    clear_session,
    login_csrf,
    safe_next,
    set_login_csrf,
    set_session,
    visitor_of,
)
from console.web import render

router = APIRouter()


def _login_page(
    request: Request, next_path: str, error: str | None = None, code: int = 200, retry_s: int = 0
) -> Response:
    token = login_csrf(request)
    page = render(request, "login.html", None, code, csrf=token, next=next_path, error=error, retry_s=retry_s)
    set_login_csrf(page, request, token)
    return page


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: Annotated[str | None, Query()] = None) -> Response:
    """The log-in page; a visitor already logged in goes on."""
    if visitor_of(request) is not None:
        return RedirectResponse(safe_next(next), status.HTTP_303_SEE_OTHER)
    return _login_page(request, safe_next(next))


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=256)],
    csrf: Annotated[str, Form(alias=CSRF_FIELD)] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    """Check the credentials under the lock on guessing; on success, a session cookie."""
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(csrf, expected):
        return _login_page(request, safe_next(next), "session_ended", status.HTTP_403_FORBIDDEN)
    logins: Logins = request.app.state.logins
    try:
        session = logins.log_in(username.strip().lower(), password, client_address(request))
    except LoginLocked as exc:
        page = _login_page(request, safe_next(next), "login_locked", 429, exc.retry_after_s)
        page.headers["Retry-After"] = str(exc.retry_after_s)
        return page
    except LoginFailed:
        return _login_page(request, safe_next(next), "login_failed", status.HTTP_401_UNAUTHORIZED)
    response = RedirectResponse(safe_next(next), status.HTTP_303_SEE_OTHER)
    set_session(response, request, session.token, session.expires_at)
    return response


@router.post("/logout")
def logout(request: Request, visitor: Annotated[Visitor, Depends(checked)]) -> Response:
    """End the session: its token is revoked and its cookie removed."""
    logins: Logins = request.app.state.logins
    logins.log_out(visitor.token)
    response = RedirectResponse("/login", status.HTTP_303_SEE_OTHER)
    clear_session(response)
    return response


@router.get("/language")
def language(
    request: Request, set: Annotated[str, Query(pattern="^(en|zh-Hant)$")], next: str | None = None
) -> Response:
    """Switch the console's language; the choice is kept in a cookie for a year."""
    response = RedirectResponse(safe_next(next), status.HTTP_303_SEE_OTHER)
    if set in LANGUAGES:
        response.set_cookie(LANGUAGE_COOKIE, set, max_age=365 * 86_400, samesite="lax", httponly=True)
    return response
