"""Playing a scenario through one MQTT connection, by device time or as fast as the broker takes it."""

from __future__ import annotations

import logging
import math
import os
import threading
import time

import paho.mqtt.client as mqtt

from ground.contract import Kind
from ground.datafiles import format_duration
from ground.settings import MqttEndpoint
from simulators.publisher import connect, wait_acknowledged
from simulators.scenario_messages import default_start, messages
from simulators.scenario_story import Scenario

log = logging.getLogger(__name__)

ACK_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 30.0


def run(
    endpoint: MqttEndpoint,
    scenario: Scenario,
    stop: threading.Event,
    speed: float = 0.0,
    start_ms: int | None = None,
) -> int:
    """Play a scenario through one MQTT connection; returns the messages sent, all acknowledged by the broker.

    `speed` 0 publishes as fast as the connection takes them; X plays X seconds of device time per
    wall-clock second. `start_ms` is the device time of t=0: the file's `start`, else `default_start`.
    """
    if speed < 0 or not math.isfinite(speed):
        raise ValueError(f"speed {speed!r}: expected 0 (as fast as possible) or a positive factor")
    if start_ms is None:
        start_ms = scenario.start_ms
    if start_ms is None:
        start_ms = default_start(scenario.duration_ms, speed, int(time.time() * 1000))
    outgoing = messages(scenario, start_ms)
    client_id = f"scenario-{os.getpid()}-{time.monotonic_ns() % 1_000_000}"
    client = connect(endpoint, client_id, stop, CONNECT_TIMEOUT_S)
    if client is None:  # stopped while connecting
        return 0
    log.info(
        "playing scenario %r: %d messages over %s of device time, speed %s → %r",
        scenario.name,
        len(outgoing),
        format_duration(scenario.duration_ms),
        f"{speed:g}x" if speed else "max",
        endpoint,
    )
    infos: list[mqtt.MQTTMessageInfo] = []
    wall_start = time.monotonic()
    try:
        for m in outgoing:
            if speed:
                due = wall_start + (m.t_ms - start_ms) / 1000 / speed
                if stop.wait(max(0.0, due - time.monotonic())):
                    break
            elif stop.is_set():
                break
            # Status is retained, as devices publish it (contract: status).
            retain = m.topic.endswith("/" + Kind.STATUS)
            infos.append(client.publish(m.topic, m.payload, qos=1, retain=retain))
        wait_acknowledged(infos, ACK_TIMEOUT_S)
    finally:
        client.disconnect()
        client.loop_stop()
    log.info("scenario %r: sent %d messages", scenario.name, len(infos))
    return len(infos)
