"""The monitoring centre's side of GB/T 26875.3: devices connect, their frames become contract messages.

A data frame with a good checksum from a configured address is confirmed, then its statuses are
emitted as fire_panel events (see `events`). A bad checksum or a data unit of the wrong length is
denied and emits nothing, so the device keeps its "not transmitted" indication and sends again.
Each message is handed to `emit(device_id, kind, body)` without ts and seq, which the gateway adds:
events as {"code", "state", "detail"}, statuses as {"state": "online" | "offline"}, power as
telemetry {"metrics": {"main_power_ok", "backup_power_ok"}}.
A frame from an address the config does not name is denied too, rather than confirmed and
dropped: a confirmed fire alarm that reaches nobody would look delivered at the device.

Liveness: a device is online from its first valid frame and offline when its last connection
closes or stays silent for `silence_s` (three 60 s heartbeats by default), when the connection is
closed. The rules call a quiet fire panel offline after three reporting intervals, so a device that
keeps sending only heartbeats is re-reported (its last telemetry, or its status) every two.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from gateway.gb26875.events import Panel
from gateway.gb26875.frames import (
    Command,
    Frame,
    FrameError,
    Splitter,
    TimeLabel,
    address_number,
    confirm,
    decode,
    deny,
    encode,
)
from gateway.gb26875.units import ComponentStatus, DataUnit, UnitError, decode_unit
from ground.contract import DEVICE_TYPES

log = logging.getLogger(__name__)

Emit = Callable[[str, str, dict[str, Any]], None]
SILENCE_S = 180.0
KEEPALIVE_S = 2.0 * DEVICE_TYPES["fire_panel"].report_interval_s
READ_SIZE = 4096


async def serve(
    listen_host: str,
    listen_port: int,
    panels: dict[str, str],
    emit: Emit,
    stop: asyncio.Event,
    *,
    silence_s: float = SILENCE_S,
) -> None:
    """Accept transmission devices and emit what their fire panels report; return when `stop` is set."""
    centre = Centre(panels, emit, silence_s)
    server = await asyncio.start_server(centre.connection, listen_host, listen_port)
    try:
        await stop.wait()
    finally:
        server.close()
        await centre.close()
        await server.wait_closed()


class Centre:
    """The devices' connections and each fire panel's state, shared by the connections."""

    def __init__(self, panels: dict[str, str], emit: Emit, silence_s: float) -> None:
        self.devices: dict[int, str] = {}
        for text, device_id in panels.items():
            number = address_number(text)
            other = self.devices.setdefault(number, device_id)
            if other != device_id:
                raise ValueError(f"address {text!r} of {device_id} is also the address of {other}")
        self.emit = emit
        self.silence_s = silence_s
        self.panels = {number: Panel() for number in self.devices}
        self.links: Counter[int] = Counter()  # address → its connections that sent a valid frame
        self.emitted: dict[int, float] = {}  # address → monotonic time of its last message
        self.writers: dict[asyncio.Task[None], asyncio.StreamWriter] = {}
        self.stopping = False

    async def close(self) -> None:
        """Close every connection and wait for their handlers; no offline is sent for them."""
        self.stopping = True
        for writer in self.writers.values():
            writer.close()
        await asyncio.gather(*self.writers, return_exceptions=True)

    async def connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one device's connection until it closes, falls silent or the server stops."""
        task = asyncio.current_task()
        assert task is not None
        self.writers[task] = writer
        link = Link(self, writer)
        try:
            await link.run(reader)
        except Exception:
            log.exception("GB/T 26875.3: connection from %s failed", link.peer)
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
            del self.writers[task]
            for address in link.addresses:
                self.links[address] -= 1
                if not self.links[address] and not self.stopping:
                    self.send(address, "status", {"state": "offline"})

    def send(self, address: int, kind: str, body: dict[str, Any]) -> None:
        """Emit one message for the fire panel of a device's address."""
        self.emitted[address] = time.monotonic()
        self.emit(self.devices[address], kind, body)

    def data(self, address: int, unit: DataUnit | None) -> None:
        """Emit what a confirmed data unit's statuses change."""
        panel = self.panels[address]
        for obj in unit.objects if unit is not None else ():
            if isinstance(obj, ComponentStatus):
                events = panel.component(obj)
            else:
                events, telemetry = panel.system(obj)
                if telemetry is not None:
                    self.send(address, "telemetry", telemetry)
            for event in events:
                self.send(address, "event", event)

    def keepalive(self, address: int) -> None:
        """Re-report a device that has said nothing new for KEEPALIVE_S."""
        if time.monotonic() - self.emitted.get(address, 0.0) < KEEPALIVE_S:
            return
        metrics = self.panels[address].metrics
        if metrics is not None:
            self.send(address, "telemetry", {"metrics": metrics})
        else:
            self.send(address, "status", {"state": "online"})


class Link:
    """One TCP connection: frames split, answered and handed to the centre."""

    def __init__(self, centre: Centre, writer: asyncio.StreamWriter) -> None:
        self.centre = centre
        self.writer = writer
        self.peer = writer.get_extra_info("peername")
        self.addresses: set[int] = set()  # configured addresses this connection brought up
        self._unknown: set[int] = set()

    async def run(self, reader: asyncio.StreamReader) -> None:
        """Read until the device closes, falls silent or the connection breaks."""
        splitter = Splitter()
        while True:
            try:
                data = await asyncio.wait_for(reader.read(READ_SIZE), self.centre.silence_s)
            except TimeoutError:
                log.warning("GB/T 26875.3: %s silent for %.0f s, closing", self.peer, self.centre.silence_s)
                return
            except ConnectionError:
                return
            if not data:
                return
            for raw in splitter.feed(data):
                self.frame(raw)
            try:
                await self.writer.drain()
            except ConnectionError:
                return

    def frame(self, raw: bytes) -> None:
        """Answer one frame, then hand on what it says."""
        try:
            frame = decode(raw)
        except FrameError as exc:
            log.warning("GB/T 26875.3: %s sent a bad frame (%s), denied", self.peer, exc.reason)
            if exc.frame is not None:
                self.answer(deny(exc.frame, TimeLabel.now()))
            return
        address = frame.source
        if address not in self.centre.devices:
            if address not in self._unknown:
                self._unknown.add(address)
                log.warning(
                    "GB/T 26875.3: %s sent as %012d, an address not configured; denied", self.peer, address
                )
            if frame.command in (Command.SEND, Command.CONTROL, Command.REQUEST):
                self.answer(deny(frame, TimeLabel.now()))
            return
        unit = None
        if frame.command == Command.SEND:
            try:
                unit = decode_unit(frame.data)
            except UnitError as exc:
                log.warning("GB/T 26875.3: %s sent a bad data unit (%s), denied", self.peer, exc)
                self.answer(deny(frame, TimeLabel.now()))
                return
            self.answer(confirm(frame, TimeLabel.now()))
        elif frame.command in (Command.CONTROL, Command.REQUEST):
            self.answer(deny(frame, TimeLabel.now()))  # the centre takes no commands or queries
        self.link_up(address)
        if frame.command == Command.SEND:
            self.centre.data(address, unit)
        self.centre.keepalive(address)

    def link_up(self, address: int) -> None:
        """Mark the device online at its first valid frame on this connection, if no other has it up."""
        if address in self.addresses:
            return
        self.addresses.add(address)
        self.centre.links[address] += 1
        if self.centre.links[address] == 1:
            log.info(
                "GB/T 26875.3: %012d (%s) is online from %s", address, self.centre.devices[address], self.peer
            )
            self.centre.send(address, "status", {"state": "online"})

    def answer(self, frame: Frame) -> None:
        """Queue a reply; the read loop drains it."""
        self.writer.write(encode(frame))
