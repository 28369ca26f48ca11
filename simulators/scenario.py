"""Fault scenarios: a story told in device time, played over MQTT, with the tickets it must produce.

A scenario file (YAML) is checked as a whole when it is loaded; `ScenarioError` lists every
problem, each naming the field (`steps[3].telemetry.floor: ...`). The keys:

    name: Entrapment between floors at night         # required
    description: ...                                  # optional
    site: demo                                        # required, a site of the contract
    start: "2026-11-27T02:10:00+08:00"                # optional device time of t=0: RFC 3339 with
                                                      # an offset, or epoch ms; default now
    duration: 3min                                    # required: how long the story runs
    devices:                                          # required, at least one
      - device_type: elevator                         # a device type of the contract
        device_id: elev-2                             # unique in the file
        report_every: 5s                              # optional: a full telemetry report this often;
                                                      # default the type's interval, at most 1min
        telemetry: {floor: 7, moving: false}          # optional state before the first step
    steps:                                            # each names one device and one of:
      - {at: 0s, device: elev-2, telemetry: {...}}    #   telemetry (merged into the state and
      - {at: 40s, device: elev-2, event: {code: ALARM_BUTTON}}  # sent as given), event
      - {at: 2min, device: elev-2, status: offline}   #   ({code, state, detail}) or status
    expect:                                           # required: what the service must make of it
      tickets:                                        # exactly these alarm tickets, one per device
        - {device_id: elev-2, class: emergency, rules: [entrapment, alarm_button], occurrences: 2}
      alarms:                                         # optional checks of alarms at the end:
        - {device_id: elev-2, rule: entrapment, active: false, raised: 1, count: 1}

Durations are written as the rules write them: `500ms`, `15s`, `10min`, `2h`, `1d`. Metrics
and event codes must be the device type's (ground/contract.py); an unquoted `on` is YAML's
boolean, so the lighting metric is written `'on'`. In `expect.alarms`, `raised` is how many times
the alarm was raised (a flapping alarm is raised again after each clear) and `count` how many
raises the last of them absorbed while active.

Steps may be grouped as reads best (by device, by thread of the story); they are played in time
order, steps at the same time in file order.

Playing: each device reports its whole current state every `report_every` from t=0 to the end
(included); a step's message is sent at its time, before that instant's reports. A status
`offline` step stops the device's reports until a status `online` step (a device that is
offline says nothing). Every message carries `ts` = device time and a `seq` per device.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

import paho.mqtt.client as mqtt
import yaml

from ground.contract import (
    BOOL,
    DEVICE_TYPES,
    EVENT_STATES,
    MAX_TS_MS,
    NUMBER,
    STATUS_STATES,
    ContractError,
    Kind,
    MetricType,
    decode,
    device_topic,
)
from ground.datafiles import ProblemsError, UniqueKeyLoader
from ground.settings import MqttEndpoint
from ground.severity import Severity
from rules.conditions import MAX_DURATION_MS, ConditionError, format_duration, parse_duration
from simulators.publisher import connect, wait_acknowledged

log = logging.getLogger(__name__)

SCENARIOS_DIR = Path(__file__).with_name("scenarios")
# The default report interval is the type's, at most this: a story's changes show within a minute.
MAX_DEFAULT_REPORT_MS = 60_000
MAX_MESSAGES = 100_000
ACK_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 30.0

_SITE_OR_DEVICE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_RULE_ID = re.compile(r"[a-z][a-z0-9_]*")
_TOP_KEYS = ("name", "description", "site", "start", "duration", "devices", "steps", "expect")
_DEVICE_KEYS = ("device_type", "device_id", "report_every", "telemetry")
_STEP_KEYS = ("at", "device", "telemetry", "event", "status")
_STEP_KINDS = {"telemetry": Kind.TELEMETRY, "event": Kind.EVENT, "status": Kind.STATUS}
_EVENT_KEYS = ("code", "state", "detail")
_EXPECT_KEYS = ("tickets", "alarms")
_TICKET_KEYS = ("device_id", "class", "rules", "occurrences")
_ALARM_KEYS = ("device_id", "rule", "active", "raised", "count")


class ScenarioError(ProblemsError):
    """A scenario file that cannot be played; `problems` lists every fault found, each naming the field."""


@dataclass(frozen=True, slots=True)
class ScenarioDevice:
    """A device of the story and how often it reports its state."""

    device_type: str
    device_id: str
    report_every_ms: int
    telemetry: Mapping[str, Any] = field(default_factory=dict)  # state before the first step


@dataclass(frozen=True, slots=True)
class Step:
    """At device time `at_ms` after the start, one device sends one message.

    `body` is the metrics for telemetry, `{"code", "state"?, "detail"?}` for an event and
    `{"state"}` for a status.
    """

    at_ms: int
    device_id: str
    kind: Kind
    body: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ExpectedTicket:
    """An alarm ticket the story must open on a device, its final class and the rules that fed it."""

    device_id: str
    severity: Severity
    rules: frozenset[str]
    occurrences: int | None = None


@dataclass(frozen=True, slots=True)
class ExpectedAlarm:
    """What one rule's alarms on a device must look like at the end; None: not checked."""

    device_id: str
    rule: str
    active: bool | None = None
    raised: int | None = None  # alarm records: 1 + the times it was raised again after clearing
    count: int | None = None  # raises the last record absorbed while active


@dataclass(frozen=True, slots=True)
class Scenario:
    """A loaded, checked scenario file."""

    name: str
    description: str
    site: str
    start_ms: int | None  # device time of t=0; None: now, when played
    duration_ms: int
    devices: tuple[ScenarioDevice, ...]
    steps: tuple[Step, ...]
    tickets: tuple[ExpectedTicket, ...]
    alarms: tuple[ExpectedAlarm, ...] = ()
    path: Path | None = None

    def device(self, device_id: str) -> ScenarioDevice:
        """The device with this id; KeyError if the story has none."""
        for d in self.devices:
            if d.device_id == device_id:
                return d
        raise KeyError(device_id)


class Outgoing(NamedTuple):
    """One message to publish: topic, JSON payload, and its device time (also the payload's ts)."""

    topic: str
    payload: bytes
    t_ms: int


# Loading and checking.


def load(path: str | Path) -> Scenario:
    """Load and check a scenario file; raises ScenarioError listing every problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError([f"cannot read the file: {exc}"], str(path)) from None
    return parse(text, str(path), path)


def parse(text: str, source: str = "scenario", path: Path | None = None) -> Scenario:
    """Check and build a scenario from YAML text; raises ScenarioError listing every problem."""
    try:
        doc = yaml.load(text, Loader=UniqueKeyLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ScenarioError([f"not valid YAML: {exc}"], source) from None
    checker = _Checker()
    scenario = checker.document(doc, path)
    if scenario is None or checker.problems:
        raise ScenarioError(checker.problems or ["the file is empty"], source)
    return scenario


def scenario_paths() -> list[Path]:
    """The scenario files shipped with the package, sorted by name."""
    return sorted(SCENARIOS_DIR.glob("*.yaml"))


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _describe(declared: MetricType) -> str:
    if isinstance(declared, tuple):
        return "one of " + "/".join(declared)
    return "true or false" if declared == BOOL else "a number"


class _Checker:
    """Walks a parsed document, collecting every problem with the path of its field."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def problem(self, where: str, text: str) -> None:
        self.problems.append(f"{where}: {text}")

    def mapping(self, value: Any, where: str, allowed: Sequence[str], required: Sequence[str]) -> bool:
        """True when `value` is a mapping with string keys among `allowed`, holding every `required` one."""
        if not isinstance(value, dict):
            self.problem(where, "must be a mapping")
            return False
        for key in value:
            if key not in allowed:
                self.problem(f"{where}.{key}", f"unknown key (allowed: {', '.join(allowed)})")
        for key in required:
            if key not in value:
                self.problem(f"{where}.{key}", "required")
        return all(k in value for k in required)

    def duration(self, value: Any, where: str) -> int | None:
        try:
            return parse_duration(value)
        except ConditionError as exc:
            self.problem(where, str(exc))
            return None

    def text(self, value: Any, where: str) -> str | None:
        if not isinstance(value, str) or not value.strip():
            self.problem(where, "must be a non-empty string")
            return None
        return value

    def start(self, value: Any, where: str) -> int | None:
        ms: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            ms = value
        elif isinstance(value, datetime):  # YAML reads an unquoted timestamp as a datetime
            if value.tzinfo is not None:
                ms = int(value.timestamp() * 1000)
        elif isinstance(value, str):
            try:
                parsed = datetime.fromisoformat(value)
            except ValueError:
                parsed = None
            if parsed is not None and parsed.tzinfo is not None:
                ms = int(parsed.timestamp() * 1000)
        if ms is None:
            self.problem(where, f"{value!r} is not an RFC 3339 time with an offset or epoch milliseconds")
        elif not 0 <= ms <= MAX_TS_MS - MAX_DURATION_MS:
            self.problem(where, f"{value!r} is not between 1970 and 9999")
            ms = None
        return ms

    def document(self, doc: Any, path: Path | None) -> Scenario | None:
        if doc is None:
            return None
        required = ("name", "site", "duration", "devices", "expect")
        if not self.mapping(doc, "scenario", _TOP_KEYS, required) and not isinstance(doc, dict):
            return None
        name = self.text(doc.get("name"), "name") if "name" in doc else None
        description = doc.get("description", "")
        if not isinstance(description, str):
            self.problem("description", "must be a string")
            description = ""
        site = doc.get("site")
        if "site" in doc and (not isinstance(site, str) or not _SITE_OR_DEVICE.fullmatch(site)):
            self.problem("site", f"{site!r} does not match [a-z0-9][a-z0-9_-]{{0,63}}")
        start_ms = self.start(doc["start"], "start") if doc.get("start") is not None else None
        duration_ms = self.duration(doc["duration"], "duration") if "duration" in doc else None
        if duration_ms == 0:
            self.problem("duration", "must be longer than 0s")
            duration_ms = None
        devices = self.devices(doc.get("devices"), duration_ms) if "devices" in doc else {}
        # A bad site is reported above; the steps are still checked, under a stand-in.
        checked_site = site if isinstance(site, str) and _SITE_OR_DEVICE.fullmatch(site) else "site"
        steps = self.steps(doc.get("steps", []), devices, duration_ms, checked_site)
        tickets, alarms = self.expect(doc.get("expect"), devices) if "expect" in doc else ((), ())
        if self.problems or name is None or duration_ms is None:
            return None
        assert isinstance(site, str)
        scenario = Scenario(
            name=name,
            description=description.strip(),
            site=site,
            start_ms=start_ms,
            duration_ms=duration_ms,
            devices=tuple(devices.values()),
            steps=tuple(steps),
            tickets=tickets,
            alarms=alarms,
            path=path,
        )
        return scenario

    def devices(self, value: Any, duration_ms: int | None) -> dict[str, ScenarioDevice]:
        devices: dict[str, ScenarioDevice] = {}
        if not isinstance(value, list) or not value:
            self.problem("devices", "must be a non-empty list")
            return devices
        reports = 0
        for i, item in enumerate(value):
            where = f"devices[{i}]"
            if not self.mapping(item, where, _DEVICE_KEYS, ("device_type", "device_id")):
                continue
            device_type, device_id = item["device_type"], item["device_id"]
            dtype = DEVICE_TYPES.get(device_type) if isinstance(device_type, str) else None
            if dtype is None:
                known = ", ".join(sorted(DEVICE_TYPES))
                self.problem(f"{where}.device_type", f"unknown device type {device_type!r} ({known})")
            if not isinstance(device_id, str) or not _SITE_OR_DEVICE.fullmatch(device_id):
                self.problem(f"{where}.device_id", f"{device_id!r} does not match [a-z0-9][a-z0-9_-]{{0,63}}")
                continue
            if device_id in devices:
                self.problem(f"{where}.device_id", f"{device_id!r} is declared twice")
                continue
            if dtype is None:
                continue
            every = min(dtype.report_interval_s * 1000, MAX_DEFAULT_REPORT_MS)
            if "report_every" in item:
                given = self.duration(item["report_every"], f"{where}.report_every")
                if given == 0:
                    self.problem(f"{where}.report_every", "must be longer than 0s")
                    continue
                if given is None:
                    continue
                every = given
            if duration_ms is not None:
                reports += duration_ms // every + 1
            telemetry: dict[str, Any] = {}
            if "telemetry" in item:
                telemetry = self.metrics(item["telemetry"], f"{where}.telemetry", device_type)
            devices[device_id] = ScenarioDevice(device_type, device_id, every, telemetry)
        if reports > MAX_MESSAGES:
            self.problem("devices", f"{reports} reports over the duration; at most {MAX_MESSAGES}")
        return devices

    def metrics(self, value: Any, where: str, device_type: str) -> dict[str, Any]:
        if not isinstance(value, dict) or not value:
            self.problem(where, "must be a non-empty mapping of metric → value")
            return {}
        declared = DEVICE_TYPES[device_type].metrics
        good: dict[str, Any] = {}
        for name, v in value.items():
            if not isinstance(name, str):
                hint = (
                    " (YAML reads unquoted on/off/yes/no as booleans: quote it)"
                    if isinstance(name, bool)
                    else ""
                )
                self.problem(where, f"metric name {name!r} is not a string{hint}")
                continue
            kind = declared.get(name)
            if kind is None:
                self.problem(f"{where}.{name}", f"unknown metric for {device_type} ({', '.join(declared)})")
            elif kind == NUMBER and not _is_number(v):
                self.problem(f"{where}.{name}", f"{v!r} is not a number")
            elif kind == BOOL and not isinstance(v, bool):
                self.problem(f"{where}.{name}", f"{v!r} is not true or false")
            elif isinstance(kind, tuple) and v not in kind:
                self.problem(f"{where}.{name}", f"{v!r} is not {_describe(kind)}")
            else:
                good[name] = v
        return good

    def steps(
        self, value: Any, devices: Mapping[str, ScenarioDevice], duration_ms: int | None, site: str
    ) -> list[Step]:
        steps: list[Step] = []
        if not isinstance(value, list):
            self.problem("steps", "must be a list")
            return steps
        for i, item in enumerate(value):
            where = f"steps[{i}]"
            if not self.mapping(item, where, _STEP_KEYS, ("at", "device")):
                continue
            at = self.duration(item["at"], f"{where}.at")
            if at is not None and duration_ms is not None and at > duration_ms:
                self.problem(
                    f"{where}.at", f"{item['at']} is after the duration ({format_duration(duration_ms)})"
                )
            kinds = [k for k in _STEP_KINDS if k in item]
            if len(kinds) != 1:
                self.problem(where, "needs exactly one of telemetry, event, status")
            device_id = item["device"]
            device = devices.get(device_id) if isinstance(device_id, str) else None
            if device is None:
                self.problem(f"{where}.device", f"unknown device {device_id!r} (not in devices)")
            if device is None or at is None or len(kinds) != 1:
                continue
            kind = kinds[0]
            body: dict[str, Any] | None
            if kind == "telemetry":
                body = self.metrics(item[kind], f"{where}.telemetry", device.device_type)
            elif kind == "event":
                body = self.event(item[kind], f"{where}.event", device.device_type)
            else:
                body = self.status(item[kind], f"{where}.status")
            if body:
                step = Step(at, device.device_id, _STEP_KINDS[kind], body)
                self.contract(step, where, site, device.device_type)
                steps.append(step)
        steps.sort(key=lambda s: s.at_ms)  # stable: steps at one time keep the file's order
        return steps

    def event(self, value: Any, where: str, device_type: str) -> dict[str, Any] | None:
        if not self.mapping(value, where, _EVENT_KEYS, ("code",)):
            return None
        events = DEVICE_TYPES[device_type].events
        code, state, detail = value["code"], value.get("state"), value.get("detail")
        ok = True
        if not isinstance(code, str) or code not in events:
            known = ", ".join(sorted(events)) or "none"
            self.problem(f"{where}.code", f"{code!r} is not an event of {device_type} ({known})")
            ok = False
        if state is not None and (not isinstance(state, str) or state not in EVENT_STATES):
            self.problem(f"{where}.state", f"{state!r} is not raised or cleared (omit it for an instant)")
            ok = False
        if detail is not None:
            if not isinstance(detail, dict):
                self.problem(f"{where}.detail", "must be a mapping")
                ok = False
            else:
                try:
                    json.dumps(detail)
                except (TypeError, ValueError) as exc:
                    self.problem(f"{where}.detail", f"not representable in JSON: {exc}")
                    ok = False
        if not ok:
            return None
        body: dict[str, Any] = {"code": code}
        if state is not None:
            body["state"] = state
        if detail:
            body["detail"] = detail
        return body

    def status(self, value: Any, where: str) -> dict[str, Any] | None:
        if not isinstance(value, str) or value not in STATUS_STATES:
            self.problem(where, f"{value!r} is not online or offline")
            return None
        return {"state": value}

    def expect(
        self, value: Any, devices: Mapping[str, ScenarioDevice]
    ) -> tuple[tuple[ExpectedTicket, ...], tuple[ExpectedAlarm, ...]]:
        if not self.mapping(value, "expect", _EXPECT_KEYS, ("tickets",)):
            return (), ()
        before = len(self.problems)
        tickets: dict[str, ExpectedTicket] = {}
        items = value["tickets"]
        if not isinstance(items, list):
            self.problem("expect.tickets", "must be a list (empty: no ticket)")
            items = []
        for i, item in enumerate(items):
            where = f"expect.tickets[{i}]"
            if not self.mapping(item, where, _TICKET_KEYS, ("device_id", "class", "rules")):
                continue
            device_id = self.device_ref(item["device_id"], f"{where}.device_id", devices)
            if device_id is not None and device_id in tickets:
                self.problem(
                    f"{where}.device_id", f"{device_id!r} listed twice: a device has one alarm ticket"
                )
                device_id = None
            severity = self.severity(item["class"], f"{where}.class")
            rules = self.rule_ids(item["rules"], f"{where}.rules")
            occurrences = self.positive(item, "occurrences", where)
            if device_id is not None and severity is not None and rules is not None:
                tickets[device_id] = ExpectedTicket(device_id, severity, rules, occurrences)
        tickets_ok = not self.problems[before:]
        alarms: list[ExpectedAlarm] = []
        items = value.get("alarms", [])
        if not isinstance(items, list):
            self.problem("expect.alarms", "must be a list")
            items = []
        seen: set[tuple[str, str]] = set()
        for i, item in enumerate(items):
            where = f"expect.alarms[{i}]"
            if not self.mapping(item, where, _ALARM_KEYS, ("device_id", "rule")):
                continue
            device_id = self.device_ref(item["device_id"], f"{where}.device_id", devices)
            rule = item["rule"]
            if not isinstance(rule, str) or not _RULE_ID.fullmatch(rule):
                self.problem(f"{where}.rule", f"{rule!r} is not a rule id")
                continue
            active = item.get("active")
            if active is not None and not isinstance(active, bool):
                self.problem(f"{where}.active", f"{active!r} is not true or false")
            raised = self.positive(item, "raised", where)
            count = self.positive(item, "count", where)
            if device_id is None or not tickets_ok:
                continue  # checked against the tickets once they are right
            ticket = tickets.get(device_id)
            if ticket is None or rule not in ticket.rules:
                self.problem(
                    where, f"{device_id}/{rule} is not among the rules of expect.tickets for {device_id}"
                )
            elif (device_id, rule) in seen:
                self.problem(where, f"{device_id}/{rule} listed twice")
            else:
                seen.add((device_id, rule))
                alarms.append(ExpectedAlarm(device_id, rule, active, raised, count))
        return tuple(tickets.values()), tuple(alarms)

    def device_ref(self, value: Any, where: str, devices: Mapping[str, ScenarioDevice]) -> str | None:
        if not isinstance(value, str) or value not in devices:
            self.problem(where, f"unknown device {value!r} (not in devices)")
            return None
        return value

    def severity(self, value: Any, where: str) -> Severity | None:
        try:
            return Severity(value) if isinstance(value, str) else Severity("?")
        except ValueError:
            self.problem(where, f"{value!r} is not routine, major or emergency")
            return None

    def rule_ids(self, value: Any, where: str) -> frozenset[str] | None:
        if not isinstance(value, list) or not value:
            self.problem(where, "must be a non-empty list of rule ids")
            return None
        bad = [r for r in value if not isinstance(r, str) or not _RULE_ID.fullmatch(r)]
        if bad:
            self.problem(where, f"not rule ids: {', '.join(repr(r) for r in bad)}")
            return None
        if len(set(value)) != len(value):
            self.problem(where, "a rule is listed twice")
            return None
        return frozenset(value)

    def positive(self, item: Mapping[str, Any], key: str, where: str) -> int | None:
        value = item.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            self.problem(f"{where}.{key}", f"{value!r} is not a whole number ≥ 1")
            return None
        return value

    def contract(self, step: Step, where: str, site: str, device_type: str) -> None:
        """The step's message must keep the device contract: a safety net under the checks above."""
        topic = device_topic(site, device_type, step.device_id, step.kind)
        try:
            decode(topic, _payload(step.kind, 0, 0, step.body), 0)
        except ContractError as exc:
            self.problem(where, exc.reason)


# Playing.


def _payload(kind: Kind, ts: int, seq: int, body: Mapping[str, Any]) -> bytes:
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
        out.append(Outgoing(topic, _payload(kind, ts, seqs[d_index], body), ts))
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
