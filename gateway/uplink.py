"""MQTT for the devices behind a gateway: a connection each, with its retained status and `offline` will.

Messages leave the spool in order at QoS 1 and are removed only once the broker acknowledged them;
paho keeps an unacknowledged message and sends it again after a reconnect, so the drain just waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from gateway.spool import Spool
from ground.clock import now_ms
from ground.contract import GATEWAY, Kind, device_topic
from ground.settings import MqttEndpoint

log = logging.getLogger(__name__)

BATCH = 200  # messages in flight per device while draining the spool
STOP_WAIT_S = 5.0  # how long a stop waits for the final `offline` statuses to be acknowledged
RECONNECT_MAX_S = 8  # a few connections per box: trying every 8 s costs the broker nothing


def status_payload(state: str, t_ms: int | None) -> bytes:
    """A status message; the will has no ts (its time is when the broker sends it)."""
    doc: dict[str, Any] = {"state": state} if t_ms is None else {"ts": t_ms, "state": state}
    return json.dumps(doc, separators=(",", ":")).encode()


@dataclass(eq=False)
class _Link:
    """One device's connection and what its drain waits on."""

    device_id: str
    status_topic: str
    client: mqtt.Client
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    connected: bool = False
    acked: set[int] = field(default_factory=set)
    state: str | None = None  # the device's current status; None until known
    announced: str | None = None  # the status the broker has from this connection


class Uplink:
    """The gateway's devices on the broker: `send` spools a message, `status` sets a device's status."""

    def __init__(
        self, endpoint: MqttEndpoint, spool: Spool, site: str, client_prefix: str, devices: dict[str, str]
    ) -> None:
        self.endpoint = endpoint
        self.spool = spool
        self.site = site
        self._prefix = client_prefix
        self._types = devices
        self._links: dict[str, _Link] = {}

    def send(self, device_id: str, kind: Kind, body: dict[str, Any], t_ms: int) -> int:
        """Spool one telemetry or event message of a device (its seq is taken now); returns the seq."""
        topic = device_topic(self.site, self._types[device_id], device_id, kind)
        seq = self.spool.append(device_id, topic, t_ms, body)
        link = self._links.get(device_id)
        if link is not None:
            link.wake.set()
        return seq

    def status(self, device_id: str, state: str) -> None:
        """Set a device's status: published, retained, once what was read before it has been sent."""
        link = self._links[device_id]
        link.state = state
        link.wake.set()

    def connected(self, device_id: str) -> bool:
        """True while the device's connection is up."""
        return self._links[device_id].connected

    async def run(self, stop: asyncio.Event) -> None:
        """Connect every device and drain the spool until `stop`; then say `offline` and disconnect."""
        loop = asyncio.get_running_loop()
        for device_id, device_type in self._types.items():
            self._links[device_id] = self._connect(loop, device_id, device_type)
        # The gateway's own status, with `offline` as its will: when the box is gone, that is said
        # on its own topic (facility/v1/{site}/gateway/{gateway_id}/status) as well as its devices'.
        gateway = self._connect(loop, self._prefix, GATEWAY)
        gateway.state = "online"
        self._links[self._prefix] = gateway
        try:
            async with asyncio.TaskGroup() as group:
                for link in self._links.values():
                    group.create_task(self._drain(link, stop))
        finally:
            await self._close()

    def _connect(self, loop: asyncio.AbstractEventLoop, device_id: str, device_type: str) -> _Link:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"{self._prefix}-{device_id}", protocol=mqtt.MQTTv311
        )
        topic = device_topic(self.site, device_type, device_id, Kind.STATUS)
        link = _Link(device_id, topic, client)
        client.will_set(topic, status_payload("offline", None), qos=1, retain=True)
        client.reconnect_delay_set(1, RECONNECT_MAX_S)
        client.max_inflight_messages_set(BATCH)
        if self.endpoint.username:
            client.username_pw_set(self.endpoint.username, self.endpoint.password)
        self.endpoint.secure(client)

        def on_connect(_c: mqtt.Client, _u: object, _f: object, reason: Any, _p: object) -> None:
            if not getattr(reason, "is_failure", False):
                loop.call_soon_threadsafe(self._up, link, True)
            else:
                log.warning("broker refused %s: %s", device_id, reason)

        def on_disconnect(_c: mqtt.Client, _u: object, _f: object, _reason: Any, _p: object) -> None:
            loop.call_soon_threadsafe(self._up, link, False)

        def on_publish(_c: mqtt.Client, _u: object, mid: int, _reason: Any, _p: object) -> None:
            loop.call_soon_threadsafe(self._acked, link, mid)

        client.on_connect = on_connect
        client.on_disconnect = on_disconnect
        client.on_publish = on_publish
        client.connect_async(self.endpoint.host, self.endpoint.port, keepalive=30)
        client.loop_start()
        return link

    @staticmethod
    def _up(link: _Link, up: bool) -> None:
        if up != link.connected:
            log.info("%s %s the broker", link.device_id, "connected to" if up else "lost")
        link.connected = up
        # A new session: the broker may have sent the will or lost the retained status.
        link.announced = None
        link.wake.set()

    @staticmethod
    def _acked(link: _Link, mid: int) -> None:
        link.acked.add(mid)
        link.wake.set()

    async def _drain(self, link: _Link, stop: asyncio.Event) -> None:
        while not stop.is_set():
            link.wake.clear()
            if link.connected:
                batch = self.spool.oldest(link.device_id, BATCH)
                if batch:
                    mids = {link.client.publish(m.topic, m.payload, qos=1).mid: m.id for m in batch}
                    if await self._until_acked(link, set(mids), stop):
                        self.spool.remove(list(mids.values()))
                    continue
                if link.state is not None and link.announced != link.state:
                    state = link.state
                    info = link.client.publish(
                        link.status_topic, status_payload(state, now_ms()), qos=1, retain=True
                    )
                    if await self._until_acked(link, {info.mid}, stop):
                        link.announced = state
                    continue
            await _either(link.wake, stop)

    @staticmethod
    async def _until_acked(link: _Link, mids: set[int], stop: asyncio.Event) -> bool:
        """Wait for the broker's acknowledgement of every mid, across reconnects; False if stopped first."""
        while not mids <= link.acked:
            if stop.is_set():
                return False
            link.wake.clear()
            if mids <= link.acked:
                break
            await _either(link.wake, stop)
        link.acked -= mids
        return True

    async def _close(self) -> None:
        """Say `offline` for every device (a clean disconnect sends no will), then disconnect."""
        loop = asyncio.get_running_loop()
        infos = []
        for link in self._links.values():
            if link.connected:
                payload = status_payload("offline", now_ms())
                infos.append((link, link.client.publish(link.status_topic, payload, qos=1, retain=True).mid))
        deadline = loop.time() + STOP_WAIT_S
        for link, mid in infos:
            while mid not in link.acked and link.connected and loop.time() < deadline:
                link.wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(link.wake.wait(), max(0.01, deadline - loop.time()))
        for link in self._links.values():
            link.client.disconnect()
            await asyncio.to_thread(link.client.loop_stop)


async def _either(event: asyncio.Event, stop: asyncio.Event) -> None:
    """Wait until `event` or `stop` is set."""
    waits = [asyncio.ensure_future(event.wait()), asyncio.ensure_future(stop.wait())]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()
