"""`facility demo --gateway`: a second site whose equipment speaks Modbus and GB/T 26875.3, behind a gateway.

A pump room's PLC (a real Modbus TCP server) and a fire alarm panel's transmission device (a real
GB/T 26875.3 client) stand in for the equipment; the gateway turns both into contract readings.
The transmission device reports a smoke detector's fire alarm a minute in, and its restore a
minute later, so the demo shows a protocol frame becoming an emergency ticket.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from pathlib import Path
from typing import Any

import yaml

from gateway.app import run as run_gateway
from gateway.config import parse_config
from gateway.gb26875.simulator import TransmissionDevice
from gateway.simulators.pump_room import PumpRoomPlc
from ground.settings import Settings
from records.devices import DeviceDirectory

log = logging.getLogger(__name__)

SITE = "site-02"
PUMP_ROOM = Path(__file__).resolve().parents[1] / "gateway" / "simulators" / "pump_room.yaml"
PANEL_ADDRESS = "0000000001"
# Where the second site's equipment is, so its tickets say where to go.
PLACES = {
    "water-pump-1": ("Block C", "B1", "pump room, booster pump 1"),
    "water-pump-2": ("Block C", "B1", "pump room, booster pump 2"),
    "sump-pit-1": ("Block C", "B2", "car park sump"),
    "water-tank-1": ("Block C", "RF", "roof tank"),
    "fire-panel-1": ("Block C", "1", "fire control room"),
}
ALARM_AFTER_S = 60.0
RESTORE_AFTER_S = 60.0
HEARTBEAT_S = 20.0


class DemoGateway:
    """The second site's equipment and its gateway, on an event loop in a thread of their own."""

    def __init__(self, settings: Settings, plc_port: int, fire_port: int) -> None:
        self.settings = settings.model_copy(update={"data_dir": settings.data_dir / "gateway"})
        self.plc = PumpRoomPlc(plc_port)
        self.fire_port = fire_port
        self._loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()
        self._thread = threading.Thread(target=self._run, name="demo-gateway", daemon=True)

    def config(self) -> Any:
        """The pump room's gateway config, on this demo's site and ports, with the fire panel's link."""
        doc = yaml.safe_load(PUMP_ROOM.read_text(encoding="utf-8"))
        doc["site"] = SITE
        doc["gateway_id"] = "gw-block-c"
        doc["modbus"][0].update(port=self.plc.port, poll_s=2)
        doc["gb26875"] = [
            {
                "listen": f"127.0.0.1:{self.fire_port}",
                "devices": [{"address": PANEL_ADDRESS, "id": "fire-panel-1"}],
            }
        ]
        return parse_config(doc, "the demo's gateway")

    def register(self, devices: DeviceDirectory) -> None:
        """Put the second site's equipment in the directory with its places."""
        types = self.config().device_types
        for device_id, (building, floor, location) in PLACES.items():
            devices.register(
                {
                    "site": SITE,
                    "device_id": device_id,
                    "device_type": types[device_id],
                    "name": device_id.replace("-", " ").capitalize(),
                    "building": building,
                    "floor": floor,
                    "location": location,
                }
            )

    def start(self) -> None:
        """Start the PLC, the gateway and the transmission device."""
        self.plc.start()
        self._thread.start()

    def stop(self) -> None:
        """Stop them, and wait."""
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(15)
        self.plc.stop()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._main())
        except Exception:
            log.exception("the demo's gateway stopped")
        finally:
            self._loop.close()

    async def _main(self) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(run_gateway(self.config(), self.settings, self._stop))
            group.create_task(self._panel())

    async def _panel(self) -> None:
        """The fire panel's transmission device: heartbeats, then a detector's alarm and restore."""
        device = TransmissionDevice("127.0.0.1", self.fire_port, PANEL_ADDRESS)
        while not self._stop.is_set():
            with contextlib.suppress(OSError):
                await device.connect()
                break
            await self._wait(0.2)
        detector = (3, 12, "12F 電梯廳 感煙探測器")
        try:
            await device.heartbeat()
            if await self._wait(ALARM_AFTER_S):
                return
            await device.fire_alarm(*detector)
            if await self._wait(RESTORE_AFTER_S):
                return
            await device.restore(*detector)
            while not await self._wait(HEARTBEAT_S):
                await device.heartbeat()
        finally:
            await device.close()

    async def _wait(self, seconds: float) -> bool:
        """Wait `seconds`; True when the demo stops meanwhile."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)
        return self._stop.is_set()
