"""A guard walking a patrol round (電子巡更): the scans their reader records, published over MQTT.

Planning is pure: `plan_walk` turns a round as the API serves it
(`GET /api/v1/patrol/rounds/{id}`) and a `Walk` (how the guard behaves: late, skipping,
out of order, repeating scans, reporting findings) into the reader's events in device time.
`payloads` gives them `ts` and `seq` as the contract wants them. `walk_round` fetches a round,
plans the walk and publishes it as the reader `facility/v1/{site}/patrol_reader/{reader}/event`,
at once (scans hours in the past are fine: the service judges by device time), after an offline
reader docks, or in real time.
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import paho.mqtt.client as mqtt

from ground.contract import ContractError, Kind, device_topic, parse_topic
from ground.settings import MqttEndpoint
from simulators.publisher import connect, wait_acknowledged

log = logging.getLogger(__name__)

PATROL_SCAN = "PATROL_SCAN"
PATROL_FINDING = "PATROL_FINDING"
# Far enough apart to be two reads, close enough that the service's 60 s de-duplication drops one.
REPEAT_AFTER_MS = 10_000
FINDING_AFTER_MS = 30_000  # the guard types the finding in after scanning the checkpoint
CONNECT_TIMEOUT_S = 30.0
ACK_TIMEOUT_S = 30.0
HTTP_TIMEOUT_S = 10.0


class WalkError(ValueError):
    """A walk that cannot be planned on this round: a checkpoint not on it, a malformed round."""


class RoundError(RuntimeError):
    """The round could not be fetched: unknown id, token refused, API unreachable."""


@dataclass(frozen=True)
class Finding:
    """A problem the guard reports from the reader at a checkpoint, optionally naming a device."""

    checkpoint: str
    text: str
    device_id: str | None = None


@dataclass(frozen=True)
class Walk:
    """How the guard walks the round."""

    late_s: float = 0  # added to every scan's due time; negative: early
    jitter_s: float = 0  # each scan moves by up to ± this, drawn from `seed`
    skip: frozenset[str] = frozenset()  # checkpoints not scanned
    swap: tuple[str, str] | None = None  # two checkpoints walked in each other's place
    repeat: bool = False  # every tag read twice, REPEAT_AFTER_MS apart
    findings: list[Finding] = field(default_factory=list)
    seed: int = 1


@dataclass(frozen=True)
class Scan:
    """One event the reader records: device time, code and the contract's detail."""

    ts: int  # epoch ms
    code: str
    detail: dict[str, str]
    checkpoint: str  # which checkpoint of the round, for reading plans; not sent


@dataclass(frozen=True)
class _Visit:
    checkpoint: str
    tag: str
    due_ms: int


def _epoch_ms(value: Any, where: str) -> int:
    """ISO 8601 with Z or an offset → epoch ms; a time without an offset is ambiguous and refused."""
    if not isinstance(value, str):
        raise WalkError(f"round: {where} must be an ISO 8601 time, not {value!r}")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise WalkError(f"round: {where} {value!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise WalkError(f"round: {where} {value!r} has no offset")
    return round(moment.timestamp() * 1000)


def _text(doc: dict[str, Any], key: str, where: str) -> str:
    value = doc.get(key)
    if not isinstance(value, str) or not value:
        raise WalkError(f"round: {where}.{key} must be a non-empty string")
    return value


def _route(round: dict[str, Any]) -> list[_Visit]:
    """The round's checkpoints as served: in route order, each with its tag and due time."""
    points = round.get("checkpoints")
    if not isinstance(points, list) or not points:
        raise WalkError("round: checkpoints must be a non-empty list")
    visits = []
    for i, point in enumerate(points):
        where = f"checkpoints[{i}]"
        if not isinstance(point, dict):
            raise WalkError(f"round: {where} must be an object")
        due = _epoch_ms(point.get("due"), f"{where}.due")
        visits.append(_Visit(_text(point, "checkpoint", where), _text(point, "tag", where), due))
    return visits


def guard_of(round: dict[str, Any]) -> str:
    """The guard walking the round: its `guard`, else the first of `guards`."""
    guard = round.get("guard")
    if not guard:
        guards = round.get("guards")
        guard = guards[0] if isinstance(guards, list) and guards else None
    if not isinstance(guard, str) or not guard:
        raise WalkError("round: no guard assigned")
    return guard


def _check_walk(visits: Sequence[_Visit], walk: Walk) -> None:
    """Every checkpoint the walk names must be on the round, and the walk must make sense."""
    on_round = {v.checkpoint for v in visits}
    named = {*walk.skip, *(walk.swap or ()), *(f.checkpoint for f in walk.findings)}
    unknown = sorted(named - on_round)
    if unknown:
        route = ", ".join(v.checkpoint for v in visits)
        raise WalkError(f"not on the round: {', '.join(unknown)} (the round has {route})")
    if walk.jitter_s < 0:
        raise WalkError(f"jitter {walk.jitter_s:g} s: must be ≥ 0")
    if walk.swap is not None:
        a, b = walk.swap
        if a == b:
            raise WalkError(f"swap: {a} with itself")
        if {a, b} & walk.skip:
            raise WalkError(f"swap: {', '.join(sorted({a, b} & walk.skip))} is also skipped")
    for finding in walk.findings:
        if finding.checkpoint in walk.skip:
            raise WalkError(f"finding at {finding.checkpoint}: the checkpoint is skipped, so never reached")


def _scan_times(visits: Sequence[_Visit], walk: Walk) -> list[int]:
    """When each visit's tag is read: due + late + seeded jitter, the swapped pair exchanging times."""
    rng = random.Random(walk.seed)
    # One draw per checkpoint, skipped or not, so skipping one leaves the others' times as they were.
    offsets = [walk.late_s + rng.uniform(-walk.jitter_s, walk.jitter_s) for _ in visits]
    times = [v.due_ms + round(s * 1000) for v, s in zip(visits, offsets, strict=True)]
    if walk.swap is not None:
        ids = [v.checkpoint for v in visits]
        i, j = ids.index(walk.swap[0]), ids.index(walk.swap[1])
        times[i], times[j] = times[j], times[i]
    return times


def plan_walk(round: dict[str, Any], walk: Walk) -> list[Scan]:
    """The events the guard's reader records on this round, in the order walked (device time). Pure."""
    visits = _route(round)
    guard = guard_of(round)
    _check_walk(visits, walk)
    scans: list[Scan] = []
    reported: set[str] = set()
    for visit, t in zip(visits, _scan_times(visits, walk), strict=True):
        if visit.checkpoint in walk.skip:
            continue
        scan = {"tag": visit.tag, "guard": guard}
        scans.append(Scan(t, PATROL_SCAN, scan, visit.checkpoint))
        if walk.repeat:
            scans.append(Scan(t + REPEAT_AFTER_MS, PATROL_SCAN, dict(scan), visit.checkpoint))
        if visit.checkpoint in reported:  # a checkpoint twice on a route: its findings at the first visit
            continue
        reported.add(visit.checkpoint)
        for finding in walk.findings:
            if finding.checkpoint == visit.checkpoint:
                detail = {**scan, "text": finding.text}
                if finding.device_id:
                    detail["device_id"] = finding.device_id
                scans.append(Scan(t + FINDING_AFTER_MS, PATROL_FINDING, detail, visit.checkpoint))
    # Stable: at one instant the route order (scan, repeat, findings) stays.
    return sorted(scans, key=lambda s: s.ts)


def payloads(scans: Sequence[Scan], start_seq: int = 0) -> list[bytes]:
    """Contract event payloads: `ts`, `seq` counting up from `start_seq`, `code` and `detail`."""
    return [
        json.dumps(
            {"ts": s.ts, "seq": start_seq + n, "code": s.code, "detail": s.detail},
            separators=(",", ":"),
            ensure_ascii=False,
        ).encode()
        for n, s in enumerate(scans)
    ]


def reader_topic(site: str, reader: str) -> str:
    """The reader's event topic; WalkError when the site or reader id breaks the contract."""
    topic = device_topic(site, "patrol_reader", reader, Kind.EVENT)
    try:
        parse_topic(topic)
    except ContractError as exc:
        raise WalkError(exc.reason) from None
    return topic


def fetch_round(api: str, token: str | None, round_id: int) -> dict[str, Any]:
    """`GET /api/v1/patrol/rounds/{id}` with a bearer token; RoundError says what went wrong."""
    url = f"{api.rstrip('/')}/api/v1/patrol/rounds/{round_id}"
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        response = httpx.get(url, headers=headers, timeout=HTTP_TIMEOUT_S)
    except httpx.HTTPError as exc:
        raise RoundError(f"cannot fetch round {round_id} from {api}: {exc}") from None
    if response.status_code == 404:
        raise RoundError(f"round {round_id}: no such patrol round at {api}")
    if response.status_code in (401, 403):
        raise RoundError(
            f"{api} refused the token ({response.status_code}): give --token or set FACILITY_ADMIN_TOKEN"
        )
    if response.is_error:
        raise RoundError(f"round {round_id}: {api} answered {response.status_code}: {response.text[:200]}")
    try:
        doc = response.json()
    except ValueError:
        raise RoundError(f"round {round_id}: {api} did not answer JSON") from None
    if not isinstance(doc, dict):
        raise RoundError(f"round {round_id}: {api} did not answer a round object")
    return doc


def walk_round(
    endpoint: MqttEndpoint,
    api: str,
    token: str | None,
    round_id: int,
    walk: Walk,
    reader: str | None = None,
    *,
    start_seq: int = 0,
    upload_after_s: float = 0.0,
    realtime: bool = False,
    stop: threading.Event | None = None,
) -> int:
    """Fetch a round, plan the walk and publish it as the reader; returns the events the broker acknowledged.

    `reader` defaults to `reader-<guard>`. By default every event goes at once; `upload_after_s`
    waits that long first (an offline reader docked later); `realtime` sends each at its device time.
    """
    doc = fetch_round(api, token, round_id)
    scans = plan_walk(doc, walk)
    site = _text(doc, "site", "round")
    topic = reader_topic(site, reader or f"reader-{guard_of(doc)}")
    return publish(endpoint, topic, scans, start_seq, upload_after_s, realtime, stop or threading.Event())


def publish(
    endpoint: MqttEndpoint,
    topic: str,
    scans: Sequence[Scan],
    start_seq: int = 0,
    upload_after_s: float = 0.0,
    realtime: bool = False,
    stop: threading.Event | None = None,
) -> int:
    """Publish the scans on `topic` at QoS 1 and wait for every PUBACK; returns how many were sent."""
    if realtime and upload_after_s:
        raise ValueError("realtime and upload_after_s exclude each other")
    stop = stop or threading.Event()
    if upload_after_s:
        log.info("reader offline: uploading %d events in %g s", len(scans), upload_after_s)
        if stop.wait(upload_after_s):
            return 0
    client = connect(endpoint, f"patrol-{topic.split('/')[4]}-{os.getpid()}", stop, CONNECT_TIMEOUT_S)
    if client is None:
        return 0
    infos: list[mqtt.MQTTMessageInfo] = []
    try:
        for scan, payload in zip(scans, payloads(scans, start_seq), strict=True):
            # Never before its device time, realtime or not: a reader cannot report a scan before it
            # is made, and the service refuses a time too far ahead of its arrival.
            wait_s = scan.ts / 1000 - time.time()
            if stop.wait(max(0.0, wait_s)):
                break
            infos.append(client.publish(topic, payload, qos=1))
        wait_acknowledged(infos, ACK_TIMEOUT_S)
    finally:
        client.disconnect()
        client.loop_stop()
    log.info("%s: %d events published", topic, len(infos))
    return len(infos)
