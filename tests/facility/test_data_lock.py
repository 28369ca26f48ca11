"""One process per data folder: a second `facility serve` or `collector` is refused, the first goes on."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from facility.service import Service
from ground.datalock import DataDirInUse, DataDirLock
from tests.conftest import ADMIN_TOKEN, make_settings, wait_until
from tests.servers import Mosquitto, free_port

pytestmark = pytest.mark.services


def test_a_second_process_on_the_same_data_folder_is_refused_with_a_clear_message(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    env = {
        **os.environ,
        "FACILITY_MQTT_URL": mosquitto.url,
        "FACILITY_DATA_DIR": str(tmp_path / "data"),
        "FACILITY_ADMIN_TOKEN": ADMIN_TOKEN,
    }
    port = free_port()
    first = subprocess.Popen(
        [sys.executable, "-m", "facility", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}/api/v1/tickets"
        auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

        def up() -> bool:
            try:
                return httpx.get(url, headers=auth).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(up, timeout_s=60, what="the first serve")
        for command in (["serve", "--port", str(free_port())], ["collector"]):
            second = subprocess.run(
                [sys.executable, "-m", "facility", *command],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert second.returncode == 1, second.stderr
            assert f"in use by another facility process (pid {first.pid})" in second.stderr
            assert "FACILITY_DATA_DIR" in second.stderr
        assert up(), "the first still serves"
    finally:
        first.terminate()
        assert first.wait(30) == 0
    # Once the first has stopped, the folder is free again.
    DataDirLock(tmp_path / "data").release()


def test_a_second_service_in_one_process_is_refused_and_a_stopped_one_frees_the_folder(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    settings = make_settings(tmp_path, mqtt_url=mosquitto.url)
    service = Service(settings)
    with pytest.raises(DataDirInUse, match="in use by another facility process"):
        Service(settings)
    service.start()
    service.stop()
    again = Service(settings)  # the lock went with the stop
    again.start()
    again.stop()
