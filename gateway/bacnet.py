"""BACnet/IP: present values of a device's objects, by change of value where it can, else by polling.

Every point is read every `poll_s` (ReadPropertyMultiple where the device supports it), which also
tells when a device stops answering. Where the device accepts SubscribeCOV for a point, a
notification wakes the poll at once, so a change arrives in a moment rather than at the next poll;
a device that refuses it is polled only, as before.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

from bacpypes3.apdu import ErrorRejectAbortNack
from bacpypes3.app import Application
from bacpypes3.argparse import SimpleArgumentParser
from bacpypes3.pdu import Address
from bacpypes3.primitivedata import ObjectIdentifier

from gateway.config import BACNET_BOOL_OBJECTS, BacnetLink, BacnetPoint
from ground.clock import now_ms

log = logging.getLogger(__name__)

Readings = dict[str, dict[str, Any] | None]
OnPoll = Callable[[Readings, int], None]


def application(bind: str, instance: int) -> Application:
    """The gateway's own BACnet/IP device, bound to `bind`."""
    args = SimpleArgumentParser().parse_args(
        ["--address", bind, "--instance", str(instance), "--name", f"facility-gateway-{instance}"]
    )
    return Application.from_args(args)


def value_of(point: BacnetPoint, value: Any) -> bool | float | int:
    """A present value as the contract's metric: binary objects' active/inactive as a boolean."""
    if point.object_type in BACNET_BOOL_OBJECTS:
        return str(value) == "active"
    if point.object_type.startswith("multi-state"):
        return int(value)
    return round(float(value), 6)  # a REAL's single precision, without its binary noise


class Poller:
    """Reads one BACnet device's points; falls back to ReadProperty when ReadPropertyMultiple is refused."""

    def __init__(self, app: Application, link: BacnetLink) -> None:
        self.app = app
        self.link = link
        self.address = Address(f"{link.host}:{link.port}")
        self.points = [(d.id, p) for d in link.devices for p in d.points]
        self.multiple = True

    async def poll(self) -> Readings:
        """Every device's metrics, or None for all when the device did not answer in time."""
        try:
            async with asyncio.timeout(
                self.link.timeout_s * max(1, 1 if self.multiple else len(self.points))
            ):
                values = await (self._multiple() if self.multiple else self._single())
        except (TimeoutError, OSError) as exc:
            log.debug("bacnet %s: %r", self.address, exc)
            return dict.fromkeys(d.id for d in self.link.devices)
        if values is None:
            return await self.poll()  # ReadPropertyMultiple was refused: read one by one from now on
        readings: Readings = {d.id: {} for d in self.link.devices}
        for (device_id, point), value in zip(self.points, values, strict=True):
            held = readings[device_id]
            if value is None or held is None:
                readings[device_id] = None
            else:
                held[point.metric] = value_of(point, value)
        return readings

    async def _multiple(self) -> Sequence[Any] | None:
        request: list[Any] = []
        for _, point in self.points:
            request += [f"{point.object_type},{point.instance}", ["present-value"]]
        answer = await self.app.read_property_multiple(self.address, request)
        if not isinstance(answer, list):
            log.info("bacnet %s: ReadPropertyMultiple refused (%s); reading one by one", self.address, answer)
            self.multiple = False
            return None
        return [_plain(item[3]) for item in answer]

    async def _single(self) -> Sequence[Any]:
        out = []
        for _, point in self.points:
            value = await self.app.read_property(
                self.address, f"{point.object_type},{point.instance}", "present-value"
            )
            out.append(_plain(value))
        return out


def _plain(value: Any) -> Any:
    """None for an error answer (an object the device lacks), else the value."""
    return None if isinstance(value, BaseException) or type(value).__name__ == "ErrorType" else value


async def run(links: Sequence[BacnetLink], on_poll: OnPoll, stop: asyncio.Event) -> None:
    """Poll every BACnet device until `stop`, one application (UDP port) per local address."""
    apps: dict[str, Application] = {}
    try:
        pollers = []
        for link in links:
            if link.bind not in apps:
                apps[link.bind] = application(link.bind, link.local_instance)
            pollers.append(Poller(apps[link.bind], link))
        async with asyncio.TaskGroup() as group:
            for poller in pollers:
                group.create_task(_poll_forever(poller, on_poll, stop))
    finally:
        for app in apps.values():
            app.close()


async def _poll_forever(poller: Poller, on_poll: OnPoll, stop: asyncio.Event) -> None:
    link = poller.link
    log.info(
        "bacnet %s device %d: %d points every %g s, and on change of value where it is accepted",
        poller.address,
        link.device_instance,
        len(poller.points),
        link.poll_s,
    )
    changed = asyncio.Event()
    async with asyncio.TaskGroup() as group:
        for _, point in poller.points:
            group.create_task(_watch(poller, point, changed, stop))
        while not stop.is_set():
            started = asyncio.get_running_loop().time()
            changed.clear()
            t_ms = now_ms()
            on_poll(await poller.poll(), t_ms)
            elapsed = asyncio.get_running_loop().time() - started
            await _sleep(max(0.0, link.poll_s - elapsed), stop, changed)


# A subscription lasts this long and is renewed by bacpypes3 before it ends.
COV_LIFETIME_S = 300
# After a subscription fails (refused, or the device went away), try again this much later.
COV_RETRY_S = 60.0


async def _watch(poller: Poller, point: BacnetPoint, changed: asyncio.Event, stop: asyncio.Event) -> None:
    """Subscribe to a point's change of value; each notification sets `changed`, waking the poll."""
    oid = ObjectIdentifier(f"{point.object_type},{point.instance}")
    while not stop.is_set():
        try:
            async with poller.app.change_of_value(poller.address, oid, lifetime=COV_LIFETIME_S) as scm:
                while not stop.is_set():
                    got = asyncio.ensure_future(scm.get_value())
                    await _first(got, stop)
                    if got.done() and not got.cancelled():
                        changed.set()
                    else:
                        got.cancel()
        # A refusal, an abort (bacpypes3 raises them as BaseException) or a timeout: polling goes on.
        except (Exception, ErrorRejectAbortNack) as exc:
            log.debug("bacnet %s %s: no change of value (%r); polled", poller.address, oid, exc)
        await _sleep(COV_RETRY_S, stop)


async def _first(task: asyncio.Future[Any], stop: asyncio.Event) -> None:
    """Wait for `task` or `stop`, whichever comes first."""
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()


async def _sleep(seconds: float, stop: asyncio.Event, wake: asyncio.Event | None = None) -> None:
    """Wait `seconds`, or less once `stop` (or `wake`) is set."""
    waiters = {asyncio.ensure_future(stop.wait())}
    if wake is not None:
        waiters.add(asyncio.ensure_future(wake.wait()))
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
