"""A fire alarm sent as GB/T 26875.3 frames, through the gateway, mosquitto and the whole service."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from gateway.config import parse_config
from gateway.gb26875.frames import Command
from gateway.gb26875.simulator import TransmissionDevice
from tests.conftest import wait_until
from tests.servers import free_port
from tickets.lifecycle import Status
from tickets.service import TicketFilter

pytestmark = pytest.mark.services


def _play(port: int, steps: Callable[[TransmissionDevice], Any]) -> Any:
    """Run a transmission device's steps against the gateway's centre, retrying until it listens."""

    async def run() -> Any:
        device = TransmissionDevice("127.0.0.1", port)
        for _ in range(200):
            try:
                await device.connect()
                break
            except OSError:
                await asyncio.sleep(0.05)
        try:
            return await steps(device)
        finally:
            await device.close()

    return asyncio.run(run())


def _fire_alarms(service: Any) -> list[Any]:
    active = service.tickets.alarms(active_only=True, site="s01", device_id="fire-panel-1")
    return [a for a in active if a.rule == "fire_alarm"]


def _fire_tickets(service: Any) -> list[Any]:
    return list(service.tickets.list(TicketFilter(device_id="fire-panel-1")))


def test_a_components_fire_alarm_opens_the_emergency_ticket_naming_it_and_its_restore_clears_it(
    service: Any, mosquitto: Any, start_gateway: Any
) -> None:
    port = free_port()
    config = parse_config(
        {
            "site": "s01",
            "gateway_id": "gw-fire",
            "gb26875": [
                {"listen": f"127.0.0.1:{port}", "devices": [{"address": "0000000001", "id": "fire-panel-1"}]}
            ],
        }
    )
    start_gateway(config, mosquitto.url)

    async def walk(device: TransmissionDevice) -> None:
        # One connection throughout, as a transmission device keeps it: closing it means offline.
        answer = await device.fire_alarm(1, 23, "3F 電梯廳 感煙探測器")
        assert answer.command == Command.CONFIRM
        await asyncio.to_thread(wait_until, lambda: bool(_fire_alarms(service)), 20, "the fire alarm")
        [ticket] = _fire_tickets(service)
        assert (ticket.rule, ticket.severity.value) == ("fire_alarm", "emergency")
        [alarm] = _fire_alarms(service)
        assert alarm.detail["detail"]["component"] == "L01-A023"
        assert alarm.detail["detail"]["description"] == "3F 電梯廳 感煙探測器"
        assert ticket.description == "Component L01-A023: 3F 電梯廳 感煙探測器"
        denied = await device.bad_checksum()
        assert denied.command == Command.DENY
        restored = await device.restore(1, 23, "3F 電梯廳 感煙探測器")
        assert restored.command == Command.CONFIRM
        await asyncio.to_thread(wait_until, lambda: not _fire_alarms(service), 20, "the alarm to clear")

    _play(port, walk)
    [ticket] = _fire_tickets(service)
    assert ticket.status is Status.OPEN, "a cleared fire alarm's ticket waits for people"
    rules = {a.rule for a in service.tickets.alarms(active_only=False, site="s01", device_id="fire-panel-1")}
    assert rules == {"fire_alarm"}, "the panel stayed online, and the bad frame changed nothing"
