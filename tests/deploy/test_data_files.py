"""`facility collector` and `serve` make the data folder and its files readable by their user only."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ADMIN_TOKEN, wait_until
from tests.servers import Mosquitto, free_port

pytestmark = pytest.mark.services


def run_briefly(args: list[str], tmp_path: Path, mosquitto: Mosquitto, ready: str) -> Path:
    """Run `facility ARGS` with a fresh data folder until its log says `ready`, then stop it; the folder."""
    data = tmp_path / "data"
    log = tmp_path / "facility.log"
    env = {
        **os.environ,
        "FACILITY_MQTT_URL": mosquitto.url,
        "FACILITY_DATA_DIR": str(data),
        "FACILITY_MQTT_CLIENT_ID": f"modes-{tmp_path.name}",
        "FACILITY_ADMIN_TOKEN": ADMIN_TOKEN,
        "FACILITY_BUFFER_SYNC": "NORMAL",
    }
    with log.open("wb") as out:
        # The test's own umask is the usual one, so only the command can make the files private.
        proc = subprocess.Popen(
            [sys.executable, "-m", "facility", *args], env=env, stdout=out, stderr=out, cwd=tmp_path
        )
    try:
        wait_until(lambda: ready in log.read_text() or proc.poll() is not None, 60, ready)
        assert proc.poll() is None, log.read_text()[-3000:]
        time.sleep(1)  # the first flushes and timers write their files too
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    return data


def modes(folder: Path) -> dict[str, int]:
    """Permission bits of the folder and of everything in it, by name."""
    out = {".": stat.S_IMODE(folder.stat().st_mode)}
    for path in folder.rglob("*"):
        out[str(path.relative_to(folder))] = stat.S_IMODE(path.stat().st_mode)
    return out


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    """Run with the umask most systems give (group and others may read)."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_facility_collector_makes_its_data_private(tmp_path: Path, mosquitto: Mosquitto) -> None:
    data = run_briefly(["collector"], tmp_path, mosquitto, "subscribed to")
    found = modes(data)
    assert {"inbox.db", "timeseries.db"} <= set(found), found
    assert found.pop(".") == 0o700
    assert all(mode == 0o600 for mode in found.values()), {n: oct(m) for n, m in found.items()}


def test_facility_serve_makes_its_data_private(tmp_path: Path, mosquitto: Mosquitto) -> None:
    port = free_port()
    data = run_briefly(
        ["serve", "--host", "127.0.0.1", "--port", str(port)], tmp_path, mosquitto, "Uvicorn running"
    )
    found = modes(data)
    assert {"inbox.db", "records.db", "timers.db"} <= set(found), found
    assert found.pop(".") == 0o700
    assert all(mode == 0o600 for mode in found.values()), {n: oct(m) for n, m in found.items()}
