"""A simulated transmission device: connects to a centre, sends statuses and waits for each answer.

`python -m gateway.gb26875.simulator --port 9026 --address 0000000001` plays a short story against a
running gateway: a heartbeat, a fire alarm from L01-A023, its restore and a fault.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from types import TracebackType

from gateway.gb26875.frames import Command, Frame, Splitter, TimeLabel, address_number, decode, encode
from gateway.gb26875.units import (
    ComponentFlag,
    ComponentStatus,
    DataUnit,
    SystemFlag,
    SystemStatus,
    units,
)

SMOKE_DETECTOR = 42  # 點型光電感煙火災探測器
LOBBY_SMOKE = "3F 電梯廳 感煙探測器"


class TransmissionDevice:
    """A user information transmission device (用戶信息傳輸裝置) over one TCP connection."""

    def __init__(
        self, host: str, port: int, address: str = "0000000001", centre: int = 0, timeout_s: float = 5.0
    ) -> None:
        self.host = host
        self.port = port
        self.address = address_number(address)
        self.centre = centre
        self.timeout_s = timeout_s
        self.serial = 0
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._splitter = Splitter()
        self._frames: list[bytes] = []

    async def __aenter__(self) -> TransmissionDevice:
        await self.connect()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def connect(self) -> None:
        """Open the connection to the centre."""
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)

    async def close(self) -> None:
        """Close the connection."""
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(ConnectionError):
                await self._writer.wait_closed()
            self._writer = self._reader = None

    def frame(
        self, unit: DataUnit | None, command: Command = Command.SEND, source: int | None = None
    ) -> Frame:
        """The next frame of this device (or as `source`): a new serial number, stamped now."""
        self.serial = (self.serial + 1) & 0xFFFF
        data = unit.encode() if unit is not None else b""
        sender = self.address if source is None else source
        return Frame(self.serial, command, sender, self.centre, TimeLabel.now(), data)

    async def send(
        self, unit: DataUnit | None, command: Command = Command.SEND, source: int | None = None
    ) -> Frame:
        """Send a data unit (None: an empty heartbeat) and return the centre's answer."""
        return await self.send_raw(encode(self.frame(unit, command, source)))

    async def send_raw(self, data: bytes) -> Frame:
        """Send bytes as they are and return the next frame the centre answers."""
        if self._writer is None:
            raise ConnectionError("not connected")
        self._writer.write(data)
        await self._writer.drain()
        return await asyncio.wait_for(self._answer(), self.timeout_s)

    async def _answer(self) -> Frame:
        while not self._frames:
            assert self._reader is not None
            data = await self._reader.read(4096)
            if not data:
                raise ConnectionError("the centre closed the connection")
            self._frames += self._splitter.feed(data)
        return decode(self._frames.pop(0))

    async def heartbeat(self, status: int = SystemFlag.NORMAL) -> Frame:
        """Send the fire alarm system's status (type 1): normal unless `status` says otherwise."""
        return await self.send(units(SystemStatus(1, 1, status, TimeLabel.now())))

    async def component(
        self, loop: int, point: int, status: int, description: str, component_type: int = SMOKE_DETECTOR
    ) -> Frame:
        """Send one component's status (type 2)."""
        obj = ComponentStatus.at(
            loop, point, status, description, TimeLabel.now(), component_type=component_type
        )
        return await self.send(units(obj))

    async def fire_alarm(
        self, loop: int, point: int, description: str, component_type: int = SMOKE_DETECTOR
    ) -> Frame:
        """A component's fire alarm."""
        status = ComponentFlag.NORMAL | ComponentFlag.FIRE_ALARM
        return await self.component(loop, point, status, description, component_type)

    async def fault(
        self, loop: int, point: int, description: str, component_type: int = SMOKE_DETECTOR
    ) -> Frame:
        """A component's fault."""
        status = ComponentFlag.NORMAL | ComponentFlag.FAULT
        return await self.component(loop, point, status, description, component_type)

    async def restore(
        self, loop: int, point: int, description: str, component_type: int = SMOKE_DETECTOR
    ) -> Frame:
        """A component back to normal."""
        return await self.component(loop, point, ComponentFlag.NORMAL, description, component_type)

    async def bad_checksum(self, unit: DataUnit | None = None) -> Frame:
        """Send a frame whose checksum is one off; returns the answer (a denial from a sound centre)."""
        raw = bytearray(encode(self.frame(unit)))
        raw[-3] = (raw[-3] + 1) & 0xFF
        return await self.send_raw(bytes(raw))


async def demo(host: str, port: int, address: str) -> None:
    """Play a heartbeat, a fire alarm, its restore and a fault, printing each answer."""
    async with TransmissionDevice(host, port, address) as device:
        steps: tuple[tuple[str, Callable[[], Awaitable[Frame]]], ...] = (
            ("heartbeat", device.heartbeat),
            ("fire alarm L01-A023", lambda: device.fire_alarm(1, 23, LOBBY_SMOKE)),
            ("restore L01-A023", lambda: device.restore(1, 23, LOBBY_SMOKE)),
            ("fault L01-A024", lambda: device.fault(1, 24, "3F 走廊 感煙探測器")),
        )
        for name, step in steps:
            answer = await step()
            print(f"{name}: {Command(answer.command).name.lower()} (serial {answer.serial})")


def main() -> None:
    """Run the demo against a centre (a gateway with a gb26875 listener)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--address", default="0000000001")
    args = parser.parse_args()
    asyncio.run(demo(args.host, args.port, args.address))


if __name__ == "__main__":
    main()
