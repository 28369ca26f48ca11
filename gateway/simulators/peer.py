"""A protocol peer (a PLC, a BACnet device) on an event loop in a thread of its own, until stopped."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from concurrent.futures import Future


class ThreadedPeer:
    """Starts `_serve` on a new event loop in a daemon thread; `stop` asks it to end and waits.

    A subclass's `_serve(ready)` sets `ready` once the peer answers, then steps its model with
    `await self._tick(step_s)` until that says the peer is stopping.
    """

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the peer and return once it answers (or raise what kept it from starting)."""
        ready: Future[None] = Future()
        self._thread = threading.Thread(target=asyncio.run, args=(self._run(ready),), daemon=True)
        self._thread.start()
        ready.result(timeout=10)

    def stop(self) -> None:
        """Stop the peer and wait for its thread."""
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        if self._thread is not None:
            self._thread.join(10)
        self._thread = self._loop = None

    async def _run(self, ready: Future[None]) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        try:
            await self._serve(ready)
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc)
            raise

    async def _serve(self, ready: Future[None]) -> None:
        raise NotImplementedError

    async def _tick(self, step_s: float) -> bool:
        """Wait one step; False once the peer is stopping."""
        assert self._stopping is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), step_s)
        return not self._stopping.is_set()
