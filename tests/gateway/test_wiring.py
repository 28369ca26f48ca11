"""The gateway's side of GB/T 26875.3, and the command.

`gateway/gb26875/` is written separately; here a small stand-in `serve` with its signature emits
what the real one would (a fire alarm, a link going down), to test only the wiring: the config's
listener and panels reach it, and what it emits becomes contract messages on the broker.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gateway.config import parse_config
from tests.conftest import wait_until

pytestmark = pytest.mark.services
CONFIG = {
    "site": "s01",
    "gateway_id": "gw-fire",
    "gb26875": [{"listen": "127.0.0.1:9000", "devices": [{"address": "0000000001", "id": "fire-panel-1"}]}],
}


def test_what_the_fire_alarm_server_emits_is_published_as_the_panels_messages(
    mosquitto, watcher, start_gateway
):
    called: list[tuple[str, int, dict[str, str]]] = []

    async def fake_serve(
        host: str, port: int, panels: dict[str, str], emit: Any, stop: asyncio.Event
    ) -> None:
        called.append((host, port, panels))
        emit("fire-panel-1", "status", {"state": "online"})
        emit("fire-panel-1", "event", {"code": "FIRE_ALARM", "state": "raised", "detail": {"zone": "B1"}})
        emit(
            "fire-panel-9", "event", {"code": "FIRE_ALARM", "state": "raised", "detail": {}}
        )  # not configured
        await stop.wait()

    start_gateway(parse_config(CONFIG), mosquitto.url, fake_serve)
    event = "facility/v1/s01/fire_panel/fire-panel-1/event"
    status = "facility/v1/s01/fire_panel/fire-panel-1/status"
    wait_until(
        lambda: event in watcher.latest and watcher.state(status) == "online", 20, "the panel's messages"
    )
    assert called == [("127.0.0.1", 9000, {"0000000001": "fire-panel-1"})]
    message = watcher.latest[event]
    assert (message["code"], message["state"], message["detail"], message["seq"]) == (
        "FIRE_ALARM",
        "raised",
        {"zone": "B1"},
        0,
    )
    assert not any("fire-panel-9" in topic for topic in watcher.latest)


def _facility(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "facility", *args], cwd=cwd, capture_output=True, text=True, timeout=60
    )


def test_gateway_check_names_every_problem_and_passes_a_good_file(tmp_path: Path):
    good = Path(__file__).resolve().parents[2] / "gateway" / "simulators" / "pump_room.yaml"
    result = _facility("gateway", "check", str(good), cwd=tmp_path)
    assert (result.returncode, result.stdout.strip()) == (0, f"{good}: ok")
    bad = tmp_path / "bad.yaml"
    bad.write_text("site: s01\ngateway_id: GW\nmodbus:\n  - host: plc\n    devices: []\n")
    result = _facility("gateway", "check", str(bad), cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"{bad}: gateway_id: 'GW' is not a gateway id ([a-z0-9][a-z0-9_-]{{0,63}})",
        f"{bad}: modbus[0].devices: must be a list with at least one item",
    ]
    result = _facility("gateway", "--config", str(bad), cwd=tmp_path)
    assert result.returncode == 1 and "2 problems" in result.stderr
