"""Mounts the console on the service's application: pages, static files, log-in, security headers."""

from __future__ import annotations

from fastapi import FastAPI, Request, status
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from console.pages import auth, devices, events, patrols, quality, reports, ticket, tickets
from console.session import LoginNeeded, login_page_for
from console.web import HERE
from records.db import Database

# No inline script or style anywhere: everything comes from /static of this product.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)
# Swagger UI's page starts itself with an inline script; it keeps every other header.
WITHOUT_CSP = ("/docs",)


class SecurityHeaders:
    """Frame denial, no sniffing, and the content security policy on every answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with_csp = not str(scope.get("path", "")).startswith(WITHOUT_CSP)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [
                    (b"x-frame-options", b"DENY"),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"same-origin"),
                ]
                if with_csp:
                    headers.append((b"content-security-policy", CSP.encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def _to_login(request: Request, exc: Exception) -> Response:
    """A page asked for without a session: to the log-in page (htmx follows HX-Redirect)."""
    target = login_page_for(exc.next_path if isinstance(exc, LoginNeeded) else "/")
    if request.headers.get("HX-Request"):
        return Response(status_code=status.HTTP_204_NO_CONTENT, headers={"HX-Redirect": target})
    return RedirectResponse(target, status.HTTP_303_SEE_OTHER)


def mount(app: FastAPI, db: Database) -> None:
    """Add the console to `app`, whose state holds the services the API uses."""
    app.state.db = db
    for module in (auth, tickets, ticket, devices, patrols, reports, quality, events):
        app.include_router(module.router, include_in_schema=False)
    app.mount("/static/console", StaticFiles(directory=HERE / "static"), name="console-static")
    app.add_exception_handler(LoginNeeded, _to_login)
    app.add_middleware(SecurityHeaders)
