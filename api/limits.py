"""The largest request body the API takes: refused with 413 before more of it is read."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLarge(HTTPException):
    """A request body over the limit; the connection is closed rather than the rest read."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"the request body is over {max_bytes} bytes", headers={"Connection": "close"})


class BodyLimit:
    """Refuses a body over `max_bytes`: at once by its Content-Length, or as a streamed body passes it.

    A pure ASGI middleware, so nothing buffers the body before it is counted: the application
    reads it through the counting `receive`, which raises `BodyTooLarge` as soon as the count
    passes the limit, and the 413 goes out while the rest of the body is still unsent.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except BodyTooLarge:
            # The application answers it as any HTTPException; this is for a body read outside
            # its handlers. A response already begun is left to finish.
            if not started:
                await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        refusal = BodyTooLarge(self.max_bytes)
        response = JSONResponse({"detail": refusal.detail}, refusal.status_code, headers=refusal.headers)
        await response(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    """The declared length of the body; a malformed one is left to the server, which refuses it."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
