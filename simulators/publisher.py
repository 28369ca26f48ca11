"""Publishes the simulated fleet over MQTT: one connection per device, status retained, a last will each."""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from ground.contract import Kind, device_topic
from ground.settings import MqttEndpoint
from simulators.devices import DeviceModel, build_fleet
from simulators.stream import messages

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SimulationPlan:
    """What `facility simulate` runs."""

    sites: int = 1
    rate: float = 20.0  # device reports per second across the fleet
    duration_s: float | None = None  # None: until stopped
    seed: int = 1
    fault_rate_per_h: float = 0.0
    start_ms: int | None = None  # device time of the first report; None: now


def _status(state: str, t_ms: int | None) -> bytes:
    doc: dict[str, object] = {"state": state} if t_ms is None else {"ts": t_ms, "state": state}
    return json.dumps(doc).encode()


def connect_device(
    endpoint: MqttEndpoint, device: DeviceModel, client_prefix: str, connected: threading.Semaphore
) -> mqtt.Client:
    """A connection for one device, with its retained `offline` status as last will."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"{client_prefix}-{device.site}-{device.device_id}",
        protocol=mqtt.MQTTv311,
    )
    status_topic = device_topic(device.site, device.device_type, device.device_id, Kind.STATUS)
    client.will_set(status_topic, _status("offline", None), qos=1, retain=True)
    if endpoint.username:
        client.username_pw_set(endpoint.username, endpoint.password)
    endpoint.secure(client)

    def on_connect(c: mqtt.Client, _u: object, _f: object, reason: object, _p: object) -> None:
        if not getattr(reason, "is_failure", False):
            c.publish(status_topic, _status("online", int(time.time() * 1000)), qos=1, retain=True)
            connected.release()

    client.on_connect = on_connect
    client.connect_async(endpoint.host, endpoint.port, keepalive=30)
    client.loop_start()
    return client


def run(endpoint: MqttEndpoint, plan: SimulationPlan, stop: threading.Event) -> int:
    """Publish until the duration is over or `stop` is set; returns the number of messages sent."""
    fleet = build_fleet(plan.sites, plan.seed, plan.fault_rate_per_h)
    connected = threading.Semaphore(0)
    clients = [connect_device(endpoint, d, "sim", connected) for d in fleet]
    deadline = time.monotonic() + 30
    for _ in clients:
        if not connected.acquire(timeout=max(0.0, deadline - time.monotonic())):
            log.warning("not every device connected within 30 s; publishing anyway")
            break
    start_ms = plan.start_ms if plan.start_ms is not None else int(time.time() * 1000)
    wall_start = time.monotonic()
    sent = 0
    log.info(
        "simulating %d devices on %d site(s) at %.1f reports/s → %r",
        len(fleet),
        plan.sites,
        plan.rate,
        endpoint,
    )
    try:
        for msg in messages(fleet, plan.seed, start_ms, plan.rate):
            elapsed_s = (msg.t_ms - start_ms) / 1000
            if plan.duration_s is not None and elapsed_s >= plan.duration_s:
                break
            # Device time runs at wall-clock pace.
            if stop.wait(max(0.0, wall_start + elapsed_s - time.monotonic())):
                break
            clients[msg.device].publish(msg.topic, msg.payload, qos=1)
            sent += 1
    finally:
        _disconnect(fleet, clients)
    log.info("simulator sent %d messages", sent)
    return sent


def _disconnect(fleet: Sequence[DeviceModel], clients: Sequence[mqtt.Client]) -> None:
    """Say offline (a clean disconnect sends no will), wait for what is in flight, disconnect."""
    now = int(time.time() * 1000)
    infos = []
    for device, client in zip(fleet, clients, strict=True):
        topic = device_topic(device.site, device.device_type, device.device_id, Kind.STATUS)
        infos.append(client.publish(topic, _status("offline", now), qos=1, retain=True))
    deadline = time.monotonic() + 10
    for info in infos:
        with contextlib.suppress(RuntimeError, ValueError):  # never connected: nothing to wait for
            info.wait_for_publish(max(0.1, deadline - time.monotonic()))
    for client in clients:
        client.disconnect()
        client.loop_stop()


def connect(
    endpoint: MqttEndpoint, client_id: str, stop: threading.Event, timeout_s: float = 30.0
) -> mqtt.Client | None:
    """A connected client with its network loop running; None if stopped first; ConnectionError if refused."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311)
    client.max_inflight_messages_set(100)
    if endpoint.username:
        client.username_pw_set(endpoint.username, endpoint.password)
    endpoint.secure(client)
    connected = threading.Event()
    refused: list[str] = []

    def on_connect(_c: mqtt.Client, _u: object, _f: object, reason: Any, _p: object) -> None:
        if getattr(reason, "is_failure", False):
            refused.append(str(reason))
        connected.set()

    client.on_connect = on_connect
    client.connect_async(endpoint.host, endpoint.port, keepalive=30)
    client.loop_start()
    deadline = time.monotonic() + timeout_s
    while not connected.wait(0.1):
        if stop.is_set() or time.monotonic() > deadline:
            break
    if refused or not connected.is_set():
        client.loop_stop()
        if stop.is_set() and not refused:
            return None
        why = f"refused: {refused[0]}" if refused else f"no answer within {timeout_s:g} s"
        raise ConnectionError(f"cannot connect to {endpoint!r}: {why}")
    return client


def wait_acknowledged(infos: Sequence[mqtt.MQTTMessageInfo], timeout_s: float = 30.0) -> None:
    """Wait until the broker acknowledged every QoS 1 publish; raise if it did not in time."""
    deadline = time.monotonic() + timeout_s
    for n, info in enumerate(infos):
        try:
            info.wait_for_publish(max(0.0, deadline - time.monotonic()))
        except (RuntimeError, ValueError) as exc:
            raise ConnectionError(f"message {n + 1} of {len(infos)} not published: {exc}") from None
        if not info.is_published():
            raise TimeoutError(f"the broker acknowledged {n} of {len(infos)} messages within {timeout_s:g} s")
