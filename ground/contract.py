"""The device contract v1: topics, payloads and device types, decoded and validated in one place."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from sys import intern
from typing import Any, NamedTuple

import msgspec

TOPIC_ROOT = "facility/v1"
MAX_PAYLOAD_BYTES = 64 * 1024
SUBSCRIPTIONS = (
    f"{TOPIC_ROOT}/+/+/+/telemetry",
    f"{TOPIC_ROOT}/+/+/+/event",
    f"{TOPIC_ROOT}/+/+/+/status",
)
# What the collector subscribes to: everything under facility/, so that a topic with too many or
# too few levels is rejected as unknown and counted, as the contract asks; the three device
# subscriptions above would never receive it. SUBSCRIPTIONS are the fallback where a broker's ACL
# refuses the wider one.
ALL_TOPICS = "facility/#"


class Subscriptions(NamedTuple):
    """The collector's topic filters: the wide ones, and the device ones where an ACL refuses those."""

    wide: tuple[str, ...]
    devices: tuple[str, ...]


def subscriptions(sites: Iterable[str] | None = None) -> Subscriptions:
    """The filters for every site, or for these sites only (a worker that serves some of them)."""
    if sites is None:
        return Subscriptions((ALL_TOPICS,), SUBSCRIPTIONS)
    ordered = sorted(sites)
    return Subscriptions(
        tuple(f"{TOPIC_ROOT}/{site}/#" for site in ordered),
        tuple(
            f"{TOPIC_ROOT}/{site}/+/+/{kind}" for site in ordered for kind in ("telemetry", "event", "status")
        ),
    )


SITE_OR_DEVICE_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")  # a site id or a device id
_DEVICE_TYPE = re.compile(r"[a-z][a-z0-9_]*")
_METRIC_NAME = re.compile(r"[a-z][a-z0-9_]*")
_EVENT_CODE = re.compile(r"[A-Z][A-Z0-9_]*")
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,6})?([Zz]|[+-]\d{2}:\d{2})")
MAX_TS_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
# How far ahead of its arrival a reading's ts may be (FACILITY_CLOCK_SKEW_S sets it): a device time
# far ahead would make every later true reading look late to the rules and a repeat to seq accounting.
DEFAULT_SKEW_MS = 300_000
# An event's detail is a few facts (zone, component, tag): bounded so no reader of it (the records,
# the API's answers) has to handle whatever nesting or size a payload can carry.
MAX_DETAIL_DEPTH = 8
MAX_DETAIL_BYTES = 8 * 1024
MAX_SEQ = 2**63 - 1  # what a store's signed 64-bit integer field holds
# Field names of the stored point that a metric must not take.
RESERVED_METRICS = frozenset({"seq", "time"})


class Kind(StrEnum):
    """What a message on a device topic carries."""

    TELEMETRY = "telemetry"
    EVENT = "event"
    STATUS = "status"


# A metric's declared type: "number", "bool", or a tuple of the allowed strings.
MetricType = str | tuple[str, ...]
NUMBER = "number"
BOOL = "bool"


@dataclass(frozen=True, slots=True)
class DeviceType:
    """A device type of the contract: its telemetry points, event codes and reporting interval."""

    name: str
    metrics: dict[str, MetricType]
    events: frozenset[str]
    report_interval_s: int


DEVICE_TYPES: dict[str, DeviceType] = {
    d.name: d
    for d in (
        DeviceType(
            "elevator",
            {
                "floor": NUMBER,
                "moving": BOOL,
                "speed_mps": NUMBER,
                "door": ("open", "closed", "opening", "closing"),
                "in_door_zone": BOOL,
                "occupied": BOOL,
                "service_mode": ("normal", "inspection", "fire", "out_of_service"),
                "run_count": NUMBER,
            },
            frozenset({"ALARM_BUTTON", "SAFETY_CIRCUIT_OPEN", "POWER_FAILURE", "DOOR_LOCK_FAULT"}),
            10,
        ),
        DeviceType(
            "fire_panel",
            {"main_power_ok": BOOL, "backup_power_ok": BOOL},
            frozenset({"FIRE_ALARM", "FAULT", "SUPERVISORY", "SPRINKLER_FLOW", "PUMP_START"}),
            60,
        ),
        DeviceType("sprinkler_pipe", {"pressure_mpa": NUMBER}, frozenset(), 60),
        DeviceType("fire_water_tank", {"level_pct": NUMBER}, frozenset(), 300),
        DeviceType(
            "fire_pump",
            {"running": BOOL, "auto_mode": BOOL, "power_ok": BOOL},
            frozenset(),
            60,
        ),
        DeviceType(
            "lighting_circuit",
            {"on": BOOL, "breaker_tripped": BOOL, "power_w": NUMBER, "lamp_failures": NUMBER},
            frozenset(),
            60,
        ),
        DeviceType(
            "emergency_light",
            {
                "main_power_ok": BOOL,
                "battery_v": NUMBER,
                "fault": BOOL,
                "last_test_duration_min": NUMBER,
            },
            frozenset(),
            300,
        ),
        DeviceType(
            "water_pump",
            {"running": BOOL, "fault": BOOL, "outlet_pressure_mpa": NUMBER},
            frozenset(),
            60,
        ),
        DeviceType("water_tank", {"level_pct": NUMBER}, frozenset(), 60),
        DeviceType(
            "sump_pit",
            {"level_pct": NUMBER, "pumps_running": NUMBER, "pumps_faulted": NUMBER},
            frozenset(),
            60,
        ),
        DeviceType(
            "air_quality",
            {
                "temp_c": NUMBER,
                "humidity_pct": NUMBER,
                "co2_ppm": NUMBER,
                "pm25_ugm3": NUMBER,
                "hcho_mgm3": NUMBER,
            },
            frozenset(),
            60,
        ),
        DeviceType("garage_co", {"co_mgm3": NUMBER, "fans_running": BOOL}, frozenset(), 60),
        DeviceType(
            "chiller",
            {"supply_temp_c": NUMBER, "return_temp_c": NUMBER, "running": BOOL, "tripped": BOOL},
            frozenset(),
            60,
        ),
        DeviceType(
            "patrol_reader",
            {"battery_v": NUMBER},
            frozenset({"PATROL_SCAN", "PATROL_FINDING", "SOS"}),
            300,
        ),
    )
}

EVENT_STATES = frozenset({"raised", "cleared"})
STATUS_STATES = frozenset({"online", "offline"})
# Detail fields a patrol event must carry; without them the scan cannot be matched to a round.
_PATROL_DETAIL_REQUIRED = {
    "PATROL_SCAN": ("tag", "guard"),
    "PATROL_FINDING": ("tag", "guard", "text"),
}


class ContractError(ValueError):
    """A message that breaks the contract; `reason` names the part at fault."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Topic(NamedTuple):
    """The parts of a device topic."""

    site: str
    device_type: str
    device_id: str
    kind: Kind


class Message(NamedTuple):
    """One decoded, valid device message.

    `body` is the metrics dict for telemetry, `{"code", "state", "detail"}` for an event and
    `{"state"}` for a status. `ts` is device time in epoch milliseconds.
    """

    site: str
    device_type: str
    device_id: str
    kind: Kind
    ts: int
    seq: int | None
    body: dict[str, Any]
    ts_given: bool = True  # False: the payload had no ts and `ts` is the receive time


_KINDS = {k.value: k for k in Kind}
# A whole device topic in one match: the common case costs one regular expression, not four.
_DEVICE_TOPIC = re.compile(
    r"facility/v1/([a-z0-9][a-z0-9_-]{0,63})/([a-z][a-z0-9_]*)/([a-z0-9][a-z0-9_-]{0,63})"
    r"/(telemetry|event|status)"
)


def parse_topic(topic: str) -> Topic:
    """Split and validate `facility/v1/{site}/{device_type}/{device_id}/{kind}`."""
    whole = _DEVICE_TOPIC.fullmatch(topic)
    if whole is not None:
        site, device_type, device_id, kind = whole.groups()
        if device_type in DEVICE_TYPES:
            # The site interned: the seq tracker and the device directory keep it with each of
            # the site's devices, and without this each device kept its own copy. (Device ids are
            # one per device already; interning them would grow the interpreter's own table.)
            return Topic(intern(site), device_type, device_id, _KINDS[kind])
    parts = topic.split("/")
    if len(parts) != 6 or parts[0] != "facility" or parts[1] != "v1":
        raise ContractError("topic: expected facility/v1/{site}/{device_type}/{device_id}/{kind}")
    _, _, site, device_type, device_id, kind = parts
    if not SITE_OR_DEVICE_ID.fullmatch(site):
        raise ContractError(f"topic: site {site!r} does not match [a-z0-9][a-z0-9_-]{{0,63}}")
    if not _DEVICE_TYPE.fullmatch(device_type) or device_type not in DEVICE_TYPES:
        raise ContractError(f"topic: unknown device_type {device_type!r}")
    if not SITE_OR_DEVICE_ID.fullmatch(device_id):
        raise ContractError(f"topic: device_id {device_id!r} does not match [a-z0-9][a-z0-9_-]{{0,63}}")
    k = _KINDS.get(kind)
    if k is None:
        raise ContractError(f"topic: unknown kind {kind!r} (telemetry, event or status)")
    return Topic(site, device_type, device_id, k)


def alarm_topic(site: str, device_id: str) -> str:
    """The topic the service publishes a device's active alarms on, retained."""
    return f"{TOPIC_ROOT}/{site}/alarms/{device_id}"


def is_alarm_topic(topic: str) -> bool:
    """True for the service's own alarm topics, which are no device's messages."""
    parts = topic.split("/")
    return len(parts) == 5 and parts[3] == "alarms" and topic.startswith(TOPIC_ROOT + "/")


# A gateway's own status (retained `online`, `offline` as its will): the box that speaks for devices,
# not a device of the contract, so no device type of DEVICE_TYPES. The collector lets it pass.
GATEWAY = "gateway"


def is_gateway_status_topic(topic: str) -> bool:
    """True for `facility/v1/{site}/gateway/{gateway_id}/status`, a gateway's own status."""
    parts = topic.split("/")
    return len(parts) == 6 and parts[3] == GATEWAY and parts[5] == "status" and topic.startswith(TOPIC_ROOT)


def device_topic(site: str, device_type: str, device_id: str, kind: Kind | str) -> str:
    """Build the topic a device publishes `kind` messages on."""
    return f"{TOPIC_ROOT}/{site}/{device_type}/{device_id}/{kind}"


def parse_ts(value: Any, received_ms: int, skew_ms: int = DEFAULT_SKEW_MS) -> int:
    """Device time in epoch ms from `ts` (integer ms or RFC 3339 with offset); receive time if absent.

    A time more than `skew_ms` ahead of the receive time is refused.
    """
    if value is None:
        return received_ms
    if isinstance(value, bool):
        raise ContractError("ts: must be epoch milliseconds or an RFC 3339 string")
    if isinstance(value, int):
        ms = value
    elif isinstance(value, str):
        if not _RFC3339.fullmatch(value):
            raise ContractError(f"ts: {value[:40]!r} is not RFC 3339 (date, time and offset)")
        try:
            ms = int(datetime.fromisoformat(value).timestamp() * 1000)
        except ValueError:
            raise ContractError(f"ts: {value[:40]!r} is not a valid time") from None
    else:
        raise ContractError("ts: must be epoch milliseconds or an RFC 3339 string")
    if not 0 <= ms <= MAX_TS_MS:
        raise ContractError("ts: must lie between 1970 and 9999")
    if ms > received_ms + skew_ms:
        raise ContractError(
            f"ts: {(ms - received_ms) / 1000:.0f} s ahead of the receive time"
            f" (at most {skew_ms / 1000:.0f} s allowed): the device's clock is wrong"
        )
    return ms


def _check_metric(device_type: DeviceType, name: Any, value: Any) -> None:
    if not isinstance(name, str) or not _METRIC_NAME.fullmatch(name):
        raise ContractError(f"metrics: name {str(name)[:64]!r} does not match [a-z][a-z0-9_]*")
    if name in RESERVED_METRICS:
        raise ContractError(f"metrics.{name}: a reserved name (the stored point has its own {name})")
    if isinstance(value, bool):
        ok = device_type.metrics.get(name, BOOL) == BOOL
    elif isinstance(value, int | float):
        ok = device_type.metrics.get(name, NUMBER) == NUMBER and _finite(value)
    elif isinstance(value, str):
        declared = device_type.metrics.get(name)
        ok = (declared is None or (isinstance(declared, tuple) and value in declared)) and _storable(value)
    else:
        ok = False
    if not ok:
        declared = device_type.metrics.get(name, "a number, boolean or string")
        if isinstance(declared, tuple):
            declared = "one of " + "/".join(declared)
        raise ContractError(f"metrics.{name}: {str(value)[:40]!r} is not {declared}")
    if len(_GOOD_NAMES) < GOOD_NAMES_MAX:
        _GOOD_NAMES.add(name)


def _finite(value: float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer too large for a float
        return False


def _storable(text: str) -> bool:
    """False for strings JSON allows but the stores cannot keep: NUL, lone surrogates (\\ud800 escapes)."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _normalise(value: Any, depth: int = 0) -> Any:
    """A detail value the databases accept: NaN and ±Infinity become null, NUL characters are dropped.

    Refuses nesting deeper than MAX_DETAIL_DEPTH and text that is not valid Unicode.
    """
    if isinstance(value, str):
        text = value.replace("\x00", "") if "\x00" in value else value
        if not _storable(text):
            raise ContractError("detail: holds text that is not valid Unicode")
        return text
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict | list):
        if depth >= MAX_DETAIL_DEPTH:
            raise ContractError(f"detail: nested deeper than {MAX_DETAIL_DEPTH} levels")
        if isinstance(value, list):
            return [_normalise(v, depth + 1) for v in value]
        return {_normalise(k, depth + 1): _normalise(v, depth + 1) for k, v in value.items()}
    return value


# An integer metric beyond this is refused by the full check (a float cannot hold it); below, it passes.
_INT_LIMIT = 2**1023
# Metric names the full check found well formed; a fleet uses a few hundred, so this stays small.
_GOOD_NAMES: set[str] = set()
GOOD_NAMES_MAX = 4096


def _decode_telemetry(device_type: DeviceType, doc: dict[str, Any]) -> dict[str, Any]:
    metrics = doc.get("metrics")
    if not isinstance(metrics, dict):
        raise ContractError("metrics: required, an object of name → value")
    if not metrics:
        raise ContractError("metrics: must name at least one point")
    declared = device_type.metrics
    for name, value in metrics.items():
        # The declared metrics of their declared type pass here; anything else, valid or not, takes
        # the full check, which also says what is wrong.
        kind = declared.get(name)
        t = type(value)
        if kind is None:
            if name in _GOOD_NAMES and (
                (t is float and value - value == 0.0)
                or t is bool
                or (t is int and -_INT_LIMIT < value < _INT_LIMIT)
                or (t is str and value.isascii() and "\x00" not in value)
            ):
                continue
        elif kind is NUMBER:
            if (t is float and value - value == 0.0) or (t is int and -_INT_LIMIT < value < _INT_LIMIT):
                continue
        elif kind is BOOL:
            if t is bool:
                continue
        elif t is str and kind is not None and value in kind:
            continue
        _check_metric(device_type, name, value)
    return metrics


def _decode_event(device_type: DeviceType, doc: dict[str, Any]) -> dict[str, Any]:
    code = doc.get("code")
    if not isinstance(code, str) or not _EVENT_CODE.fullmatch(code):
        raise ContractError("code: required, UPPER_SNAKE")
    state = doc.get("state")
    if state is not None and state not in EVENT_STATES:
        raise ContractError(f"state: {str(state)[:40]!r} is not raised or cleared")
    detail = doc.get("detail")
    if detail is None:
        detail = {}
    elif not isinstance(detail, dict):
        raise ContractError("detail: must be an object")
    else:
        detail = _normalise(detail)
        size = len(json.dumps(detail, ensure_ascii=False).encode())
        if size > MAX_DETAIL_BYTES:
            raise ContractError(f"detail: {size} bytes, over the {MAX_DETAIL_BYTES} limit")
    if device_type.name == "patrol_reader":
        for field in _PATROL_DETAIL_REQUIRED.get(code, ()):
            if not isinstance(detail.get(field), str) or not detail[field]:
                raise ContractError(f"detail.{field}: required for {code}, a non-empty string")
    return {"code": code, "state": state, "detail": detail}


def _decode_status(doc: dict[str, Any]) -> dict[str, Any]:
    state = doc.get("state")
    if state not in STATUS_STATES:
        raise ContractError(f"state: {str(state)[:40]!r} is not online or offline")
    return {"state": state}


_fast_json = msgspec.json.Decoder()


def _load(payload: bytes) -> dict[str, Any]:
    """The payload's JSON object; raises ContractError saying what is wrong with it."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ContractError(f"payload: {len(payload)} bytes, over the {MAX_PAYLOAD_BYTES} limit")
    try:
        # A compiled decoder takes most payloads at a third of json's cost. What it refuses goes
        # through json below, which decides as before: it gives the reason, or takes what only it
        # takes (NaN, which the metric check then refuses by name).
        doc = _fast_json.decode(payload)
    except (msgspec.DecodeError, RecursionError):
        doc = _strict_load(payload)
    if not isinstance(doc, dict):
        raise ContractError("payload: must be a JSON object")
    return doc


def _strict_load(payload: bytes) -> Any:
    """The payload decoded by json, the reference for what the contract accepts."""
    try:
        # Decoded as UTF-8 first: json.loads would also take UTF-16 and a byte-order mark.
        doc = json.loads(payload.decode("utf-8"))
    except UnicodeDecodeError:
        raise ContractError("payload: not UTF-8") from None
    except ValueError as exc:
        raise ContractError(f"payload: not JSON ({exc.args[0][:80]})") from None
    except RecursionError:
        raise ContractError("payload: nested too deeply") from None
    return doc


def decode_gateway_status(
    topic: str, payload: bytes, received_ms: int, skew_ms: int = DEFAULT_SKEW_MS
) -> Message:
    """A gateway's own status (a topic `is_gateway_status_topic` took) as a Message of type `gateway`."""
    _, _, site, _, gateway_id, _ = topic.split("/")
    if not SITE_OR_DEVICE_ID.fullmatch(site) or not SITE_OR_DEVICE_ID.fullmatch(gateway_id):
        raise ContractError("topic: a gateway's site and id must match [a-z0-9][a-z0-9_-]{0,63}")
    doc = _load(payload)
    ts = parse_ts(doc.get("ts"), received_ms, skew_ms)
    return Message(
        site, GATEWAY, gateway_id, Kind.STATUS, ts, None, _decode_status(doc), doc.get("ts") is not None
    )


def decode(topic: str, payload: bytes, received_ms: int, skew_ms: int = DEFAULT_SKEW_MS) -> Message:
    """Decode and validate one message; raises ContractError with the reason if it is bad.

    `skew_ms`: how far ahead of `received_ms` the message's `ts` may be.
    """
    t = parse_topic(topic)
    doc = _load(payload)
    ts = parse_ts(doc.get("ts"), received_ms, skew_ms)
    seq = doc.get("seq")
    if seq is not None and (isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq <= MAX_SEQ):
        raise ContractError("seq: must be a non-negative integer below 2^63")
    dtype = DEVICE_TYPES[t.device_type]
    body: dict[str, Any]
    if t.kind is Kind.TELEMETRY:
        body = _decode_telemetry(dtype, doc)
    elif t.kind is Kind.EVENT:
        body = _decode_event(dtype, doc)
    else:
        body = _decode_status(doc)
    return Message(
        t.site, t.device_type, t.device_id, t.kind, ts, seq, body, "ts" in doc and doc["ts"] is not None
    )
