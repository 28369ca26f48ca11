"""The simulated message stream: which device reports when, with `ts` and `seq`, as topic and payload."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Sequence
from typing import NamedTuple

from ground.contract import device_topic
from simulators.devices import DeviceModel


class Outgoing(NamedTuple):
    """One message to publish."""

    topic: str
    payload: bytes
    t_ms: int  # device time, also the payload's ts
    device: int  # index into the fleet


def messages(fleet: Sequence[DeviceModel], seed: int, start_ms: int, rate: float) -> Iterator[Outgoing]:
    """Poll the fleet round-robin, `rate` reports per second of device time, forever.

    Deterministic: the same fleet, seed, start and rate give the same messages. A report with
    nothing changed sends nothing (report by exception), so fewer messages than reports flow.
    """
    rng = random.Random(seed)
    seqs = [0] * len(fleet)
    step_ms = 1000.0 / rate
    i = 0
    while True:
        index = i % len(fleet)
        device = fleet[index]
        t_ms = start_ms + int(i * step_ms)
        for kind, body in device.report(t_ms, rng):
            payload = {"ts": t_ms, "seq": seqs[index], **body}
            seqs[index] += 1
            topic = device_topic(device.site, device.device_type, device.device_id, kind)
            yield Outgoing(topic, json.dumps(payload, separators=(",", ":")).encode(), t_ms, index)
        i += 1
