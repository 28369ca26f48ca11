"""A chiller controller, a real BACnet/IP device: supply and return temperatures, running, tripped.

Objects: analog-input 1 supply °C, analog-input 2 return °C, binary-input 1 running, binary-input 2 tripped;
the one `chiller.yaml` describes.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
from concurrent.futures import Future
from typing import Any

from bacpypes3.app import Application
from bacpypes3.argparse import SimpleArgumentParser
from bacpypes3.local.analog import AnalogInputObject
from bacpypes3.local.binary import BinaryInputObject

STEP_S = 0.2


class ChillerDevice:
    """The device on 127.0.0.1:`port`, in a thread of its own; `pin` holds a value, as a test's fault."""

    def __init__(self, port: int, instance: int = 1001, seed: int = 1) -> None:
        self.port, self.instance = port, instance
        self.rng = random.Random(seed)
        self._pinned: dict[str, Any] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Bind the UDP port and return once the device answers."""
        ready: Future[None] = Future()
        self._thread = threading.Thread(target=asyncio.run, args=(self._serve(ready),), daemon=True)
        self._thread.start()
        ready.result(timeout=10)

    def stop(self) -> None:
        """Close the device."""
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        if self._thread is not None:
            self._thread.join(10)
        self._thread = self._loop = None

    def pin(self, name: str, value: Any) -> None:
        """Hold `supply`, `return`, `running` or `tripped` at `value`."""
        self._pinned[name] = value

    async def _serve(self, ready: Future[None]) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        args = SimpleArgumentParser().parse_args(
            ["--address", f"127.0.0.1/32:{self.port}", "--instance", str(self.instance), "--name", "chiller"]
        )
        app = Application.from_args(args)
        objects = {
            "supply": AnalogInputObject(
                objectIdentifier=("analog-input", 1),
                objectName="supply",
                presentValue=7.0,
                units="degreesCelsius",
                # What a change must reach to be notified to a change-of-value subscriber.
                covIncrement=0.1,
            ),
            "return": AnalogInputObject(
                objectIdentifier=("analog-input", 2),
                objectName="return",
                presentValue=12.0,
                units="degreesCelsius",
                # What a change must reach to be notified to a change-of-value subscriber.
                covIncrement=0.1,
            ),
            "running": BinaryInputObject(
                objectIdentifier=("binary-input", 1), objectName="running", presentValue="active"
            ),
            "tripped": BinaryInputObject(
                objectIdentifier=("binary-input", 2), objectName="tripped", presentValue="inactive"
            ),
        }
        for obj in objects.values():
            app.add_object(obj)
        try:
            ready.set_result(None)
            while not self._stopping.is_set():
                self._step(objects)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), STEP_S)
        finally:
            app.close()

    def _step(self, objects: dict[str, Any]) -> None:
        """Supply near 7 °C and return near 12 °C while running; both drift to the room's 26 when not."""
        running = self._pinned.get("running", True)
        supply = float(objects["supply"].presentValue)
        back = float(objects["return"].presentValue)
        target_supply, target_return = (7.0, 12.0) if running else (26.0, 26.0)
        values = {
            "supply": round(supply + 0.1 * (target_supply - supply) + self.rng.uniform(-0.05, 0.05), 2),
            "return": round(back + 0.1 * (target_return - back) + self.rng.uniform(-0.05, 0.05), 2),
            "running": "active" if running else "inactive",
            "tripped": "active" if self._pinned.get("tripped", False) else "inactive",
        }
        for name, value in {
            **values,
            **{k: v for k, v in self._pinned.items() if k in ("supply", "return")},
        }.items():
            objects[name].presentValue = value
