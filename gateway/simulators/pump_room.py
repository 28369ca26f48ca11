"""A pump room's PLC as a real Modbus TCP server: two water pumps, a sump pit and a tank, values that move.

Register map (unit 1), the one `pump_room.yaml` describes:

| table | address | what |
|---|---|---|
| coil | 0, 1 | water pump 1, 2 running |
| discrete input | 1, 2 | water pump 1, 2 fault |
| holding | 100, 101 | water pump 1, 2 outlet pressure, uint16, 0.001 MPa |
| holding | 110-111 | sump level, float32 %, high word first |
| holding | 112 | sump pumps running; 113 sump pumps faulted |
| input | 0-1 | tank level, int32 in 0.01 %, low word first |
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import struct
import threading
from concurrent.futures import Future
from typing import Any

from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from gateway.points import Table

UNIT = 1
STEP_S = 0.1  # model time step, in wall-clock seconds
_SIZE = 256  # addresses 0..255 of each table exist
_FUNCTION = {Table.COIL: 5, Table.DISCRETE_INPUT: 2, Table.HOLDING: 6, Table.INPUT: 4}  # the table's block


class PumpRoomModel:
    """Plausible values: pumps alternate on the tank's demand, the sump fills and is pumped out."""

    def __init__(self, seed: int = 1) -> None:
        self.rng = random.Random(seed)
        self.tank_pct = 80.0
        self.sump_pct = 35.0
        self.sump_pumps = 0
        self.duty = 0  # which water pump runs
        self.filling = False

    def step(self, dt_s: float) -> dict[tuple[Table, int], int | bool]:
        """Advance `dt_s` seconds; the registers' new values."""
        self.tank_pct -= 0.05 * dt_s
        if self.tank_pct < 60:
            self.filling = True
        elif self.tank_pct > 90:
            self.filling, self.duty = False, 1 - self.duty
        if self.filling:
            self.tank_pct += 0.4 * dt_s
        self.sump_pct += (0.08 - 0.5 * self.sump_pumps) * dt_s
        if self.sump_pct > 70:
            self.sump_pumps = 1
        elif self.sump_pct < 30:
            self.sump_pumps = 0
        running = [self.filling and self.duty == i for i in (0, 1)]
        pressures = [round((0.45 + self.rng.uniform(-0.01, 0.01)) * 1000) if r else 0 for r in running]
        sump = struct.unpack(">2H", struct.pack(">f", self.sump_pct))
        tank_raw = struct.unpack(">2H", struct.pack(">i", round(self.tank_pct * 100)))
        return {
            (Table.COIL, 0): running[0],
            (Table.COIL, 1): running[1],
            (Table.HOLDING, 100): pressures[0],
            (Table.HOLDING, 101): pressures[1],
            (Table.HOLDING, 110): sump[0],
            (Table.HOLDING, 111): sump[1],
            (Table.HOLDING, 112): self.sump_pumps,
            (Table.INPUT, 0): tank_raw[1],  # low word first
            (Table.INPUT, 1): tank_raw[0],
        }


class PumpRoomPlc:
    """The PLC on 127.0.0.1:`port` in a thread of its own; stop and start it again on the same port.

    `pin` fixes an address's value (a fault bit, a pressure) until `unpin`: the model leaves it alone.
    """

    def __init__(self, port: int, host: str = "127.0.0.1", seed: int = 1) -> None:
        self.host, self.port = host, port
        self.model = PumpRoomModel(seed)
        self._pinned: dict[tuple[Table, int], int | bool] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopping: asyncio.Event | None = None

    def start(self) -> None:
        """Listen, and return once it accepts connections."""
        ready: Future[None] = Future()
        self._thread = threading.Thread(target=asyncio.run, args=(self._serve(ready),), daemon=True)
        self._thread.start()
        ready.result(timeout=10)

    def stop(self) -> None:
        """Stop listening and drop every connection (a PLC switched off)."""
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        if self._thread is not None:
            self._thread.join(10)
        self._thread = self._loop = None

    def pin(self, table: Table, address: int, value: int | bool) -> None:
        """Hold one address at `value` (a test's fault, a value a reading must show)."""
        self._pinned[(table, address)] = value

    def unpin(self, table: Table, address: int) -> None:
        """Let the model move the address again."""
        self._pinned.pop((table, address), None)

    async def _serve(self, ready: Future[None]) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        blocks = tuple([SimData(0, count=_SIZE, values=v, datatype=t)] for v, t in _BLOCKS)
        device = SimDevice(id=UNIT, simdata=blocks)  # type: ignore[arg-type]
        server = ModbusTcpServer(device, address=(self.host, self.port))
        try:
            await server.serve_forever(background=True)
            await self._write(server, self.model.step(0.0))
            ready.set_result(None)
            while not self._stopping.is_set():
                await self._write(server, self.model.step(STEP_S))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), STEP_S)
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc)
            raise
        finally:
            await server.shutdown()  # type: ignore[no-untyped-call]

    async def _write(self, server: Any, values: dict[tuple[Table, int], int | bool]) -> None:
        for (table, address), value in {**values, **self._pinned}.items():
            await server.async_setValues(UNIT, _FUNCTION[table], address, [value])


# Coils, discrete inputs, holding and input registers: separate tables, as most PLCs keep them.
_BLOCKS = ((False, DataType.BITS), (False, DataType.BITS), (0, DataType.REGISTERS), (0, DataType.REGISTERS))
