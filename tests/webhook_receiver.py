"""A real webhook receiver for tests: an HTTP server on loopback that fails for a while, then accepts."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver:
    """Answers `fail_first` POSTs with 503, then 200; keeps every POST and what it accepted."""

    def __init__(self, fail_first: int = 0, status_when_failing: int = 503) -> None:
        self.fail_first = fail_first
        self.posts: list[tuple[str, str, dict[str, Any]]] = []  # (path, Idempotency-Key, body)
        self.accepted: list[tuple[str, str, dict[str, Any]]] = []
        lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                seen = (self.path, self.headers.get("Idempotency-Key", ""), body)
                with lock:
                    receiver.posts.append(seen)
                    failing = len(receiver.posts) <= receiver.fail_first
                    if not failing:
                        receiver.accepted.append(seen)
                self.send_response(status_when_failing if failing else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, path: str) -> str:
        """The URL of one of its paths (each recipient its own)."""
        return f"{self.base}/{path}"

    def keys(self, path: str | None = None) -> list[str]:
        """The idempotency keys it accepted, of one path or all."""
        return [key for p, key, _ in self.accepted if path is None or p == f"/{path}"]

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def receiving(fail_first: int = 0) -> Iterator[Receiver]:
    """A receiver for the length of the block."""
    receiver = Receiver(fail_first)
    try:
        yield receiver
    finally:
        receiver.close()
