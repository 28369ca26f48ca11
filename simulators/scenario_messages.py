"""The messages a scenario sends, in order and with their device time: pure, no broker.

Each device reports its whole current state every `report_every` from t=0 to the end (included);
a step's message is sent at its time, before that instant's reports. A status `offline` step stops
the device's reports until a status `online` step (a device that is offline says nothing). Every
message carries `ts` = device time and a `seq` per device.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, NamedTuple

from ground.contract import Kind, device_topic
from simulators.scenario_story import Scenario


class Outgoing(NamedTuple):
    """One message to publish: topic, JSON payload, and its device time (also the payload's ts)."""

    topic: str
    payload: bytes
    t_ms: int


def payload(kind: Kind, ts: int, seq: int, body: Mapping[str, Any]) -> bytes:
    """The compact JSON a device of the contract sends: `ts`, `seq` and the body of its kind."""
    doc: dict[str, Any] = {"ts": ts, "seq": seq}
    if kind is Kind.TELEMETRY:
        doc["metrics"] = dict(body)
    else:
        doc.update(body)
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def messages(scenario: Scenario, start_ms: int) -> list[Outgoing]:
    """Every message of the story in sending order, with device time `start_ms` at t=0. Pure.

    At one instant the steps come first, in file order, then each device's report of its whole
    state as it stands after them; a device with no state yet, or offline, does not report.
    """
    # (t, 0, step index) for steps; (t, 1, device index) for periodic reports.
    timeline: list[tuple[int, int, int]] = [(s.at_ms, 0, i) for i, s in enumerate(scenario.steps)]
    for d_index, device in enumerate(scenario.devices):
        timeline.extend((t, 1, d_index) for t in range(0, scenario.duration_ms + 1, device.report_every_ms))
    timeline.sort()
    index = {d.device_id: i for i, d in enumerate(scenario.devices)}
    states: list[dict[str, Any]] = [dict(d.telemetry) for d in scenario.devices]
    offline = [False] * len(scenario.devices)
    seqs = [0] * len(scenario.devices)
    out: list[Outgoing] = []

    def send(d_index: int, kind: Kind, t: int, body: Mapping[str, Any]) -> None:
        device = scenario.devices[d_index]
        topic = device_topic(scenario.site, device.device_type, device.device_id, kind)
        ts = start_ms + t
        out.append(Outgoing(topic, payload(kind, ts, seqs[d_index], body), ts))
        seqs[d_index] += 1

    for t, phase, i in timeline:
        if phase == 0:
            step = scenario.steps[i]
            d_index = index[step.device_id]
            if step.kind is Kind.TELEMETRY:
                states[d_index].update(step.body)
            elif step.kind is Kind.STATUS:
                offline[d_index] = step.body["state"] == "offline"
            send(d_index, step.kind, t, step.body)
        elif states[i] and not offline[i]:
            send(i, Kind.TELEMETRY, t, states[i])
    return out


def default_start(duration_ms: int, speed: float, now_ms: int) -> int:
    """Device time of t=0 when none is given: as late as lets no message be stamped ahead of its sending.

    Played faster than real time, device time outruns the wall clock; the service refuses a `ts`
    ahead of its arrival (beyond a small skew), as it would a device whose clock is wrong. So the
    story starts that far in the past: played as fast as possible, it ends now.
    """
    if speed == 0:
        return now_ms - duration_ms
    if speed > 1:
        return now_ms - int(duration_ms * (1 - 1 / speed))
    return now_ms
