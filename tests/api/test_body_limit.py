"""Request bodies over FACILITY_MAX_BODY_BYTES are refused with 413 before they are read."""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from facility.service import Service
from tests.conftest import ADMIN_TOKEN, Api, make_settings, wait_until
from tests.servers import Mosquitto, free_port

pytestmark = pytest.mark.services

MiB = 1024 * 1024
DEFAULT_LIMIT = MiB


@dataclass
class Served:
    """`facility serve` in a process of its own, so its memory is its own."""

    port: int
    pid: int

    def rss_peak_kib(self) -> int:
        """The process's peak resident memory so far."""
        return _status_kib(self.pid, "VmHWM")

    def rss_kib(self) -> int:
        """The process's resident memory now."""
        return _status_kib(self.pid, "VmRSS")


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for process {pid}")


@pytest.fixture
def served(tmp_path: Path, mosquitto: Mosquitto) -> Iterator[Served]:
    """The service as `facility serve` runs it, with the default body limit."""
    port = free_port()
    env = {
        **os.environ,
        "FACILITY_MQTT_URL": mosquitto.url,
        "FACILITY_DATA_DIR": str(tmp_path / "data"),
        "FACILITY_ADMIN_TOKEN": ADMIN_TOKEN,
    }
    env.pop("FACILITY_MAX_BODY_BYTES", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "facility", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def up() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/openapi.json").status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(up, timeout_s=60, what="facility serve")
        yield Served(port, proc.pid)
    finally:
        proc.terminate()
        proc.wait(30)


def _head(port: int, headers: dict[str, str]) -> bytes:
    lines = ["POST /api/v1/tickets HTTP/1.1", f"Host: 127.0.0.1:{port}", "Content-Type: application/json"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _read_response(sock: socket.socket, timeout_s: float) -> tuple[int, dict[str, str], Any]:
    """Status, headers and JSON body of the one response on `sock`."""
    sock.settimeout(timeout_s)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed before a response: {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode().split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines)}
    length = int(headers["content-length"])
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(status_line.split()[1]), headers, json.loads(body[:length])


def test_a_body_declared_over_the_limit_is_refused_before_it_is_read(served: Served) -> None:
    with socket.create_connection(("127.0.0.1", served.port), timeout=10) as sock:
        sock.sendall(_head(served.port, {"Content-Length": str(200 * MiB)}))
        started = time.monotonic()
        # Not one byte of the body is sent: the answer comes from the header alone.
        status, headers, body = _read_response(sock, timeout_s=5)
    assert status == 413 and time.monotonic() - started < 5
    assert str(DEFAULT_LIMIT) in body["detail"]
    assert headers["connection"] == "close"


def test_a_streamed_body_is_refused_as_soon_as_it_passes_the_limit(served: Served) -> None:
    rss_before = served.rss_kib()
    peak_before = served.rss_peak_kib()
    chunk = b"x" * (64 * 1024)
    framed = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    sent = 0
    answer: tuple[int, dict[str, str], Any] | None = None
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", served.port), timeout=10) as sock:
        sock.sendall(_head(served.port, {"Transfer-Encoding": "chunked"}))
        # 50 MiB offered in 64 KiB chunks, without a token; stop once the server has answered.
        while sent < 50 * MiB:
            if select.select([sock], [], [], 0)[0]:
                break
            try:
                sock.sendall(framed)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
        answer = _read_response(sock, timeout_s=10)
    elapsed = time.monotonic() - started
    status, _headers, body = answer
    assert status == 413, body
    # Socket buffers on both sides hold a few MiB; the server itself stopped at the limit.
    assert sent < 16 * MiB, f"{sent / MiB:.1f} MiB sent before the answer"
    assert elapsed < 10
    growth_mib = (served.rss_peak_kib() - max(rss_before, peak_before)) / 1024
    assert growth_mib < 16, f"the server grew by {growth_mib:.1f} MiB"
    # The server still answers.
    assert httpx.get(f"http://127.0.0.1:{served.port}/openapi.json").status_code == 200


@pytest.fixture
def small_limit(tmp_path: Path, mosquitto: Mosquitto) -> Iterator[Api]:
    """The service with a 2 KiB body limit, over real HTTP."""
    service = Service(
        make_settings(tmp_path, mqtt_url=mosquitto.url, admin_token=ADMIN_TOKEN, max_body_bytes=2048)
    )
    service.start()
    assert service.wait_ready(15)
    api = Api(service.app())
    yield api
    api.close()
    service.stop()


def _ticket_of_size(size: int) -> bytes:
    """A JSON ticket report of exactly `size` bytes."""
    empty = json.dumps({"site": "s1", "title": "Lift 2 stuck", "description": ""}).encode()
    padded = json.dumps({"site": "s1", "title": "Lift 2 stuck", "description": "d" * (size - len(empty))})
    assert len(padded.encode()) == size
    return padded.encode()


def test_the_limit_is_the_setting_and_a_body_at_the_limit_is_taken(small_limit: Api) -> None:
    headers = {**small_limit.admin, "Content-Type": "application/json"}
    at_limit = small_limit.http.post("/api/v1/tickets", content=_ticket_of_size(2048), headers=headers)
    assert at_limit.status_code == 201, at_limit.text
    over = small_limit.http.post("/api/v1/tickets", content=_ticket_of_size(2049), headers=headers)
    assert over.status_code == 413 and over.json() == {"detail": "the request body is over 2048 bytes"}

    def streamed(body: bytes) -> Iterator[bytes]:
        for i in range(0, len(body), 100):
            yield body[i : i + 100]

    chunked = small_limit.http.post(
        "/api/v1/tickets", content=streamed(_ticket_of_size(2048)), headers=headers
    )
    assert chunked.status_code == 201, chunked.text
    chunked = small_limit.http.post(
        "/api/v1/tickets", content=streamed(_ticket_of_size(2049)), headers=headers
    )
    assert chunked.status_code == 413
    # Every body, on any route: an action's record and a patrol checkpoint alike.
    for path in ("/api/v1/tickets/1/resolve", "/api/v1/patrol/checkpoints", "/api/v1/tokens"):
        r = small_limit.http.post(path, content=b"{" + b" " * 2048 + b"}", headers=headers)
        assert r.status_code == 413, (path, r.status_code)
