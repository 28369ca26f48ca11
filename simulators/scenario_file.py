"""Scenario files: a fault story in device time and what it must produce, checked whole when loaded.

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

How a story becomes messages: simulators/scenario_messages.py; playing them: scenario_play.py.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from ground.contract import (
    BOOL,
    DEVICE_TYPES,
    EVENT_STATES,
    MAX_TS_MS,
    NUMBER,
    SITE_OR_DEVICE_ID,
    STATUS_STATES,
    ContractError,
    Kind,
    MetricType,
    decode,
    device_topic,
)
from ground.datafiles import (
    MAX_DURATION_MS,
    Checker,
    Place,
    ProblemsError,
    format_duration,
    read_yaml,
)
from simulators.scenario_expect import ExpectedAlarm, ExpectedTicket, expectations
from simulators.scenario_messages import payload
from simulators.scenario_story import Scenario, ScenarioDevice, Step

SCENARIOS_DIR = Path(__file__).with_name("scenarios")
# The default report interval is the type's, at most this: a story's changes show within a minute.
MAX_DEFAULT_REPORT_MS = 60_000
MAX_MESSAGES = 100_000

_TOP_KEYS = ("name", "description", "site", "start", "duration", "devices", "steps", "expect")
_DEVICE_KEYS = ("device_type", "device_id", "report_every", "telemetry")
_STEP_KEYS = ("at", "device", "telemetry", "event", "status")
_STEP_KINDS = {"telemetry": Kind.TELEMETRY, "event": Kind.EVENT, "status": Kind.STATUS}
_EVENT_KEYS = ("code", "state", "detail")
# The contract's states, in the order a problem names them: "raised or cleared", "online or offline".
_EVENT_STATES = sorted(EVENT_STATES, reverse=True)
_STATUS_STATES = sorted(STATUS_STATES, reverse=True)
_ROOT = Place()
_SCENARIO = Place(("scenario",))  # the document as a whole: "scenario.sight: unknown key"


class ScenarioError(ProblemsError):
    """A scenario file that cannot be played; `problems` lists every fault found, each naming the field."""


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
    doc = read_yaml(text, source, ScenarioError)
    checker = _ScenarioChecker()
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


class _ScenarioChecker(Checker):
    """Builds a Scenario from the parsed document, collecting every problem with the path of its field."""

    def text(self, at: Place, value: Any) -> str | None:
        if not isinstance(value, str) or not value.strip():
            self.add(at, "must be a non-empty string")
            return None
        return value

    def start(self, at: Place, value: Any) -> int | None:
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
            self.add(at, f"{value!r} is not an RFC 3339 time with an offset or epoch milliseconds")
        elif not 0 <= ms <= MAX_TS_MS - MAX_DURATION_MS:
            self.add(at, f"{value!r} is not between 1970 and 9999")
            ms = None
        return ms

    def document(self, doc: Any, path: Path | None) -> Scenario | None:
        if doc is None:
            return None
        required = ("name", "site", "duration", "devices", "expect")
        if not self.mapping(_SCENARIO, doc, _TOP_KEYS, required) and not isinstance(doc, dict):
            return None
        name = self.text(_ROOT / "name", doc.get("name")) if "name" in doc else None
        description = doc.get("description", "")
        if not isinstance(description, str):
            self.add(_ROOT / "description", "must be a string")
            description = ""
        site = self.matching(_ROOT / "site", doc["site"], SITE_OR_DEVICE_ID) if "site" in doc else None
        start_ms = self.start(_ROOT / "start", doc["start"]) if doc.get("start") is not None else None
        duration_ms = None
        if "duration" in doc:
            duration_ms = self.duration(_ROOT / "duration", doc["duration"], positive=True)
        devices = self.devices(doc.get("devices"), duration_ms) if "devices" in doc else {}
        # A bad site is reported above; the steps are still checked, under a stand-in.
        steps = self.steps(doc.get("steps", []), devices, duration_ms, site or "site")
        tickets: tuple[ExpectedTicket, ...] = ()
        alarms: tuple[ExpectedAlarm, ...] = ()
        if "expect" in doc:
            tickets, alarms = expectations(self, _ROOT / "expect", doc["expect"], devices)
        if self.problems or name is None or duration_ms is None or site is None:
            return None
        return Scenario(
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

    def devices(self, value: Any, duration_ms: int | None) -> dict[str, ScenarioDevice]:
        devices: dict[str, ScenarioDevice] = {}
        if not isinstance(value, list) or not value:
            self.add(_ROOT / "devices", "must be a non-empty list")
            return devices
        reports = 0
        for i, item in enumerate(value):
            at = (_ROOT / "devices")[i]
            if not self.mapping(at, item, _DEVICE_KEYS, ("device_type", "device_id")):
                continue
            device_type = self.device_type(
                at / "device_type", item["device_type"], "unknown device type {value!r} ({known})"
            )
            device_id = self.matching(at / "device_id", item["device_id"], SITE_OR_DEVICE_ID)
            if device_id is None:
                continue
            if device_id in devices:
                self.add(at / "device_id", f"{device_id!r} is declared twice")
                continue
            if device_type is None:
                continue
            every = min(DEVICE_TYPES[device_type].report_interval_s * 1000, MAX_DEFAULT_REPORT_MS)
            if "report_every" in item:
                given = self.duration(at / "report_every", item["report_every"], positive=True)
                if given is None:
                    continue
                every = given
            if duration_ms is not None:
                reports += duration_ms // every + 1
            telemetry: dict[str, Any] = {}
            if "telemetry" in item:
                telemetry = self.metrics(at / "telemetry", item["telemetry"], device_type)
            devices[device_id] = ScenarioDevice(device_type, device_id, every, telemetry)
        if reports > MAX_MESSAGES:
            self.add(_ROOT / "devices", f"{reports} reports over the duration; at most {MAX_MESSAGES}")
        return devices

    def metrics(self, at: Place, value: Any, device_type: str) -> dict[str, Any]:
        if not isinstance(value, dict) or not value:
            self.add(at, "must be a non-empty mapping of metric → value")
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
                self.add(at, f"metric name {name!r} is not a string{hint}")
                continue
            kind = declared.get(name)
            if kind is None:
                self.add(at / name, f"unknown metric for {device_type} ({', '.join(declared)})")
            elif kind == BOOL:
                if self.flag(at / name, v) is not None:
                    good[name] = v
            elif kind == NUMBER and not _is_number(v):
                self.add(at / name, f"{v!r} is not a number")
            elif isinstance(kind, tuple) and v not in kind:
                self.add(at / name, f"{v!r} is not {_describe(kind)}")
            else:
                good[name] = v
        return good

    def steps(
        self, value: Any, devices: Mapping[str, ScenarioDevice], duration_ms: int | None, site: str
    ) -> list[Step]:
        steps: list[Step] = []
        if not isinstance(value, list):
            self.add(_ROOT / "steps", "must be a list")
            return steps
        for i, item in enumerate(value):
            at = (_ROOT / "steps")[i]
            if not self.mapping(at, item, _STEP_KEYS, ("at", "device")):
                continue
            at_ms = self.duration(at / "at", item["at"])
            if at_ms is not None and duration_ms is not None and at_ms > duration_ms:
                self.add(at / "at", f"{item['at']} is after the duration ({format_duration(duration_ms)})")
            kinds = [k for k in _STEP_KINDS if k in item]
            if len(kinds) != 1:
                self.add(at, "needs exactly one of telemetry, event, status")
            device_id = item["device"]
            device = devices.get(device_id) if isinstance(device_id, str) else None
            if device is None:
                self.add(at / "device", f"unknown device {device_id!r} (not in devices)")
            if device is None or at_ms is None or len(kinds) != 1:
                continue
            kind = kinds[0]
            body: dict[str, Any] | None
            if kind == "telemetry":
                body = self.metrics(at / kind, item[kind], device.device_type)
            elif kind == "event":
                body = self.event(at / kind, item[kind], device.device_type)
            else:
                state = self.choice(at / kind, item[kind], _STATUS_STATES)
                body = None if state is None else {"state": state}
            if body:
                step = Step(at_ms, device.device_id, _STEP_KINDS[kind], body)
                self.contract(at, step, site, device.device_type)
                steps.append(step)
        steps.sort(key=lambda s: s.at_ms)  # stable: steps at one time keep the file's order
        return steps

    def event(self, at: Place, value: Any, device_type: str) -> dict[str, Any] | None:
        if not self.mapping(at, value, _EVENT_KEYS, ("code",)):
            return None
        code, state, detail = value["code"], value.get("state"), value.get("detail")
        refusal = "{value!r} is not an event of {device_type} ({known})"
        ok = self.event_code(at / "code", code, device_type, refusal) is not None
        if state is not None:
            hint = " (omit it for an instant)"
            ok = self.choice(at / "state", state, _EVENT_STATES, hint=hint) is not None and ok
        if detail is not None:
            if not isinstance(detail, dict):
                self.add(at / "detail", "must be a mapping")
                ok = False
            else:
                try:
                    json.dumps(detail)
                except (TypeError, ValueError) as exc:
                    self.add(at / "detail", f"not representable in JSON: {exc}")
                    ok = False
        if not ok:
            return None
        body: dict[str, Any] = {"code": code}
        if state is not None:
            body["state"] = state
        if detail:
            body["detail"] = detail
        return body

    def contract(self, at: Place, step: Step, site: str, device_type: str) -> None:
        """The step's message must keep the device contract: a safety net under the checks above."""
        topic = device_topic(site, device_type, step.device_id, step.kind)
        try:
            decode(topic, payload(step.kind, 0, 0, step.body), 0)
        except ContractError as exc:
            self.add(at, exc.reason)
