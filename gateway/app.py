"""The gateway process: every adapter of the config polling or listening, its readings spooled and sent."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from gateway import bacnet, modbus
from gateway.config import FireAlarmLink, GatewayConfig
from gateway.reports import Liveness, Reporter
from gateway.spool import Spool
from gateway.uplink import Uplink
from ground.clock import now_ms
from ground.contract import STATUS_STATES, Kind
from ground.settings import Settings

log = logging.getLogger(__name__)

SPOOL_FILE = "gateway-spool.db"
Emit = Callable[[str, str, dict[str, Any]], None]
Serve = Callable[[str, int, dict[str, str], Emit, asyncio.Event], Awaitable[None]]


class Devices:
    """What the adapters hand over as contract messages: polls reported by exception, statuses by change."""

    def __init__(self, config: GatewayConfig, uplink: Uplink) -> None:
        self.uplink = uplink
        deadbands = config.deadbands
        self._reporters = {
            device_id: Reporter(device_type, deadbands.get(device_id))
            for device_id, device_type in config.device_types.items()
        }
        self._liveness = {device_id: Liveness() for device_id in config.device_types}

    def on_poll(self, readings: dict[str, dict[str, Any] | None], t_ms: int) -> None:
        """One poll of an adapter: a device's metrics, or None for one that did not answer."""
        for device_id, metrics in readings.items():
            liveness = self._liveness[device_id]
            if metrics is None:
                changed = liveness.missed()
            else:
                changed = liveness.answered()
                if metrics:
                    report = self._reporters[device_id].report(metrics, t_ms)
                    if report:
                        self.uplink.send(device_id, Kind.TELEMETRY, {"metrics": report}, t_ms)
            if changed is not None:
                log.info("%s is %s", device_id, changed)
                self.uplink.status(device_id, changed)

    def emit(self, device_id: str, kind: str, body: dict[str, Any]) -> None:
        """A message from a listening adapter (GB/T 26875.3): an event, a status, or telemetry."""
        if device_id not in self._liveness:
            log.warning("dropped a %s of %r, a device this gateway does not have", kind, device_id)
            return
        if kind == Kind.STATUS:
            state = body.get("state")
            if state not in STATUS_STATES:
                log.warning("dropped status %r of %s", state, device_id)
                return
            self._liveness[device_id].state = str(state)
            self.uplink.status(device_id, str(state))
        elif kind in (Kind.EVENT, Kind.TELEMETRY):
            self.uplink.send(device_id, Kind(kind), body, now_ms())
        else:
            log.warning("dropped a message of kind %r of %s", kind, device_id)


def _fire_alarm_server() -> Serve:
    """The GB/T 26875.3 server, imported only when a config has a listener."""
    from gateway.gb26875.server import serve

    server: Serve = serve
    return server


async def run(
    config: GatewayConfig, settings: Settings, stop: asyncio.Event, serve: Serve | None = None
) -> None:
    """Run the gateway until `stop`; `serve` stands in for the GB/T 26875.3 server (tests of the wiring)."""
    spool = Spool(Path(settings.data_dir) / SPOOL_FILE, settings.buffer_sync)
    uplink = Uplink(settings.mqtt, spool, config.site, config.gateway_id, config.device_types)
    devices = Devices(config, uplink)
    if config.gb26875 and serve is None:
        serve = _fire_alarm_server()
    log.info(
        "gateway %s of site %s: %d devices → %r (%d messages waiting in the spool)",
        config.gateway_id,
        config.site,
        len(config.device_types),
        settings.mqtt,
        spool.waiting(),
    )
    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(uplink.run(stop))
            for link in config.modbus:
                group.create_task(modbus.run(link, devices.on_poll, stop))
            if config.bacnet:
                group.create_task(bacnet.run(config.bacnet, devices.on_poll, stop))
            for fire in config.gb26875:
                assert serve is not None
                group.create_task(_listen(serve, fire, devices.emit, stop))
    finally:
        spool.close()


async def _listen(serve: Serve, link: FireAlarmLink, emit: Emit, stop: asyncio.Event) -> None:
    log.info(
        "GB/T 26875.3: listening on %s:%d for %d transmission devices", link.host, link.port, len(link.panels)
    )
    await serve(link.host, link.port, dict(link.panels), emit, stop)
