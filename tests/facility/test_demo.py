"""`facility demo` as a new user runs it: embedded broker, collector and simulators in one process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from collector.stores.sqlite import SqliteStore
from tests.servers import free_port


def _demo(tmp_path: Path, *args: str, log_level: str | None = None) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACILITY_")}
    env["FACILITY_DATA_DIR"] = str(tmp_path / "data")
    if log_level:
        env["FACILITY_LOG_LEVEL"] = log_level
    return subprocess.Popen(
        [sys.executable, "-m", "facility", "demo", "--mqtt-port", str(free_port()), *args],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_demo_runs_for_its_duration_and_stores_readings_in_sqlite(tmp_path: Path) -> None:
    proc = _demo(tmp_path, "--duration", "4", "--rate", "100", "--port", str(free_port()))
    out, _ = proc.communicate(timeout=90)
    assert proc.returncode == 0, out
    assert "embedded (amqtt)" in out and "timeseries.db" in out
    stored = int(out.rsplit("stopped; ", 1)[1].split()[0])
    assert stored > 20
    store = SqliteStore(tmp_path / "data" / "timeseries.db")
    floors = store.query("elevator", "floor", 0, 2**62)
    assert floors and all(isinstance(v, float) for _, v in floors)
    store.close()


def test_ctrl_c_stops_the_demo_cleanly(tmp_path: Path) -> None:
    proc = _demo(tmp_path, "--rate", "50", "--port", str(free_port()))
    lines: list[str] = []
    assert proc.stdout is not None
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout or ()), daemon=True)
    reader.start()
    deadline = time.monotonic() + 60
    while not any("Ctrl-C" in line for line in lines) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert any("Ctrl-C" in line for line in lines), "".join(lines)
    time.sleep(2)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 0
    reader.join(10)
    proc.stdout.close()
    out = "".join(lines)
    assert "stopped;" in out and "Traceback" not in out


def test_the_demo_keeps_libraries_quiet_unless_debug(tmp_path: Path) -> None:
    """The demo's own lines stay readable: no INFO from the broker, state machines, migrations, timers."""
    chatty = (" INFO amqtt", " INFO transitions", " INFO alembic", " INFO apscheduler")
    proc = _demo(tmp_path, "--duration", "6", "--rate", "50", "--port", str(free_port()))
    out, _ = proc.communicate(timeout=90)
    assert proc.returncode == 0, out
    assert not [line for line in out.splitlines() if line.startswith(chatty, 23)], out[:3000]
    assert "stopped;" in out
    debug = tmp_path / "debug"
    debug.mkdir()
    proc = _demo(debug, "--duration", "3", "--rate", "10", "--port", str(free_port()), log_level="DEBUG")
    out, _ = proc.communicate(timeout=90)
    assert proc.returncode == 0
    assert any(" amqtt" in line or " alembic" in line for line in out.splitlines())


def test_the_demo_prints_an_account_per_role_that_logs_in_and_ends_without_offline_tickets(
    tmp_path: Path,
) -> None:
    import httpx

    from records.db import Database, sqlite_file_url
    from tickets.service import TicketFilter, TicketService

    proc = _demo(tmp_path, "--duration", "8", "--faults", "0", "--port", str(free_port()))
    assert proc.stdout is not None
    lines: list[str] = []
    for line in proc.stdout:
        lines.append(line)
        if "Ctrl-C" in line:
            break
    console = next(line for line in lines if line.strip().startswith("console"))
    url = console.split()[1].rstrip("/")
    accounts = {
        parts[0]: parts[1]
        for line in lines
        if (parts := line.split()) and len(parts) == 3 and parts[2].startswith("(")
    }
    assert set(accounts) == {"admin", "manager", "engineer", "guard", "front_desk"}, "".join(lines)
    answer = httpx.post(
        f"{url}/api/v1/auth/login", json={"username": "engineer", "password": accounts["engineer"]}
    )
    assert answer.status_code == 200 and answer.json()["role"] == "engineer"
    assert httpx.get(f"{url}/login").status_code == 200
    rest, _ = proc.communicate(timeout=90)
    assert proc.returncode == 0, "".join(lines) + rest
    # The simulators' goodbyes come after the service has stopped: no device is taken for offline.
    db = Database(sqlite_file_url(tmp_path / "data", "records.db"))
    try:
        tickets = TicketService(db).list(TicketFilter())
        assert [t.rule for t in tickets if t.rule == "offline"] == []
    finally:
        db.engine.dispose()
