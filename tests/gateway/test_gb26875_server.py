"""The GB/T 26875.3 server on loopback with the simulated transmission device: answers and messages."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from gateway.gb26875.frames import Command, Frame, TimeLabel, decode
from gateway.gb26875.server import serve
from gateway.gb26875.simulator import LOBBY_SMOKE, TransmissionDevice
from gateway.gb26875.units import ComponentFlag, ComponentStatus, SystemFlag, units
from ground import contract
from ground.clock import now_ms
from tests.servers import free_port

PANELS = {"0000000001": "fire-panel-1", "0000000002": "fire-panel-2"}
ONLINE = ("fire-panel-1", "status", {"state": "online"})
OFFLINE = ("fire-panel-1", "status", {"state": "offline"})
GOLDEN = Path(__file__).parent / "golden"
AT = TimeLabel(5, 30, 14, 18, 5, 24)
Message = tuple[str, str, dict[str, Any]]


class Recorder:
    """The `emit` of the tests: keeps every message and wakes whoever waits for one."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self._changed = asyncio.Event()

    def __call__(self, device_id: str, kind: str, body: dict[str, Any]) -> None:
        self.messages.append((device_id, kind, body))
        self._changed.set()

    async def wait_for(self, check: Callable[[list[Message]], bool], timeout_s: float = 5.0) -> None:
        """Wait until `check` holds for the messages so far."""
        async with asyncio.timeout(timeout_s):
            while not check(self.messages):
                self._changed.clear()
                await self._changed.wait()

    def events(self) -> list[tuple[str, str, str]]:
        """(device, code, state) of each event."""
        return [(d, b["code"], b["state"]) for d, kind, b in self.messages if kind == "event"]


class Centre:
    """A running `serve` on a free port."""

    def __init__(self, port: int, emitted: Recorder) -> None:
        self.port = port
        self.emitted = emitted
        self.devices: list[TransmissionDevice] = []

    async def device(self, address: str = "0000000001") -> TransmissionDevice:
        """A simulated device connected to it; the first attempts may come before it listens."""
        device = TransmissionDevice("127.0.0.1", self.port, address, centre=100)
        self.devices.append(device)
        async with asyncio.timeout(5):
            while True:
                try:
                    await device.connect()
                    return device
                except ConnectionRefusedError:
                    await asyncio.sleep(0)  # let the server's task reach its listen


@contextlib.asynccontextmanager
async def running(silence_s: float = 30.0) -> AsyncIterator[Centre]:
    emitted = Recorder()
    stop = asyncio.Event()
    port = free_port()
    task = asyncio.create_task(serve("127.0.0.1", port, dict(PANELS), emitted, stop, silence_s=silence_s))
    centre = Centre(port, emitted)
    try:
        yield centre
    finally:
        for device in centre.devices:
            await device.close()
        stop.set()
        await asyncio.wait_for(task, 5)
    for message in emitted.messages:
        accepted_by_contract(message)


def accepted_by_contract(message: Message) -> None:
    """The body, given ts and seq as the gateway does, decodes as the contract's message of the same body."""
    device_id, kind, body = message
    payload = json.dumps({"ts": now_ms(), "seq": 7, **body}, ensure_ascii=False).encode()
    topic = f"facility/v1/s01/fire_panel/{device_id}/{kind}"
    decoded = contract.decode(topic, payload, now_ms())
    assert decoded.body == (body["metrics"] if kind == "telemetry" else body)


def run(body: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(body(), 20))


def confirms(answer: Frame, device: TransmissionDevice) -> bool:
    return (answer.command, answer.serial, answer.source, answer.destination, answer.data) == (
        Command.CONFIRM,
        device.serial,
        100,
        device.address,
        b"",
    )


def test_a_fire_alarm_is_confirmed_and_emitted_once_and_its_restore_cleared() -> None:
    async def body() -> None:
        async with running() as centre:
            device = await centre.device()
            assert confirms(await device.fire_alarm(1, 23, LOBBY_SMOKE), device)
            emitted = centre.emitted.messages
            assert emitted[0] == ONLINE
            assert centre.emitted.events() == [("fire-panel-1", "FIRE_ALARM", "raised")]
            detail = emitted[1][2]["detail"]
            assert detail["component"] == "L01-A023"
            assert (detail["description"], detail["component_type"]) == (LOBBY_SMOKE, 42)
            # The same status again (a resend) is confirmed and emits nothing new.
            assert confirms(await device.fire_alarm(1, 23, LOBBY_SMOKE), device)
            assert confirms(await device.restore(1, 23, LOBBY_SMOKE), device)
            assert centre.emitted.events() == [
                ("fire-panel-1", "FIRE_ALARM", "raised"),
                ("fire-panel-1", "FIRE_ALARM", "cleared"),
            ]
            assert emitted[-1][2]["detail"]["component"] == "L01-A023"
            assert confirms(await device.fault(1, 24, "3F 走廊 感煙探測器"), device)
            assert centre.emitted.events()[-1] == ("fire-panel-1", "FAULT", "raised")
            assert confirms(await device.heartbeat(SystemFlag.NORMAL | SystemFlag.MAIN_POWER_FAULT), device)
            assert emitted[-1] == (
                "fire-panel-1",
                "telemetry",
                {"metrics": {"main_power_ok": False, "backup_power_ok": True}},
            )
            await device.close()

    run(body)


def test_the_golden_frame_over_the_wire_is_confirmed_as_the_golden_confirmation() -> None:
    def golden(name: str) -> bytes:
        lines = (GOLDEN / f"gb26875_{name}.hex").read_text().splitlines()
        return bytes.fromhex(" ".join(line for line in lines if not line.startswith("#")))

    async def body() -> None:
        async with running() as centre:
            device = await centre.device()
            answer = await device.send_raw(golden("fire_alarm"))
            expected = decode(golden("fire_alarm_confirm"))
            assert answer.time.to_datetime() is not None
            assert answer == replace(expected, time=answer.time)
            denied = await device.send_raw(golden("bad_checksum"))
            assert (denied.command, denied.serial) == (Command.DENY, 1)
            assert centre.emitted.events() == [("fire-panel-1", "FIRE_ALARM", "raised")]
            await device.close()

    run(body)


def test_a_bad_checksum_is_denied_and_emits_nothing() -> None:
    async def body() -> None:
        async with running() as centre:
            device = await centre.device()
            alarm = ComponentStatus.at(
                1, 23, ComponentFlag.NORMAL | ComponentFlag.FIRE_ALARM, LOBBY_SMOKE, AT
            )
            answer = await device.bad_checksum(units(alarm))
            assert (answer.command, answer.serial, answer.destination) == (Command.DENY, device.serial, 1)
            assert centre.emitted.messages == []
            # The connection stays usable: the next good frame is confirmed and brings the link up.
            assert confirms(await device.heartbeat(), device)
            assert centre.emitted.messages[0] == ONLINE
            await device.close()

    run(body)


def test_an_unknown_address_is_denied_and_emits_nothing() -> None:
    async def body() -> None:
        async with running() as centre:
            stranger = await centre.device("0000000099")
            answer = await stranger.fire_alarm(1, 23, LOBBY_SMOKE)
            assert (answer.command, answer.destination) == (Command.DENY, 99)
            assert centre.emitted.messages == []
            # A configured address on the same connection is served as usual.
            frame = await stranger.send(None, source=2)
            assert (frame.command, frame.destination) == (Command.CONFIRM, 2)
            assert centre.emitted.messages == [("fire-panel-2", "status", {"state": "online"})]
            await stranger.close()

    run(body)


def test_the_link_going_down_emits_offline_and_a_restore_after_reconnecting_clears() -> None:
    async def body() -> None:
        async with running() as centre:
            device = await centre.device()
            assert confirms(await device.fire_alarm(1, 23, LOBBY_SMOKE), device)
            await device.close()
            await centre.emitted.wait_for(lambda m: m[-1] == OFFLINE)
            device = await centre.device()
            assert confirms(await device.restore(1, 23, LOBBY_SMOKE), device)
            assert centre.emitted.messages[-2:] == [
                ONLINE,
                ("fire-panel-1", "event", centre.emitted.messages[-1][2]),
            ]
            assert centre.emitted.events()[-1] == ("fire-panel-1", "FIRE_ALARM", "cleared")
            await device.close()

    run(body)


def test_a_silent_device_is_closed_and_offline() -> None:
    async def body() -> None:
        async with running(silence_s=0.3) as centre:
            device = await centre.device()
            assert confirms(await device.heartbeat(), device)
            await centre.emitted.wait_for(lambda m: m[-1] == OFFLINE)
            with pytest.raises(ConnectionError, match="closed"):
                await device.heartbeat()
            await device.close()

    run(body)


def test_two_connections_of_one_device_are_offline_only_when_both_are_gone() -> None:
    async def body() -> None:
        async with running() as centre:
            first, second = await centre.device(), await centre.device()
            assert confirms(await first.heartbeat(), first)
            assert confirms(await second.heartbeat(), second)
            await first.close()
            assert confirms(await second.component(1, 1, ComponentFlag.NORMAL, "x"), second)
            await second.close()
            await centre.emitted.wait_for(lambda m: m[-1] == OFFLINE)
            # One online at the first frame, one offline once both are gone, whichever close came first.
            statuses = [m for m in centre.emitted.messages if m[1] == "status"]
            assert statuses == [ONLINE, OFFLINE]

    run(body)


def test_one_address_written_two_ways_for_two_panels_is_refused() -> None:
    async def body() -> None:
        with pytest.raises(ValueError, match="also the address of"):
            await serve("127.0.0.1", free_port(), {"1": "a", "0001": "b"}, Recorder(), asyncio.Event())

    run(body)
