"""The rules engine: device messages in, alarms raised and cleared out. Pure: no clock, no I/O.

Time. Durations (`for`, `clear_for`) and rolling means run on device time, the messages' `ts`,
so a replay faster than real time raises the same alarms with the same timestamps. `tick(now)`
fires what falls due with no new message: device time is then estimated as the device's last
`ts` plus the wall-clock time since that message arrived. Offline is judged on wall clock.

Late messages (`ts` older than the newest seen from the device) do not move device time back:
telemetry and stateful events among them are ignored (the newer values stand; storage keeps
them all), an instantaneous event still raises (a guard's SOS buffered in a reader is still an
SOS), and every message but a status `offline` counts as a sign of life. One exception: a
message with an older `ts` but a higher `seq` than the newest is news from a device whose clock
was set back; it is taken as the new device time, and pending durations and rolling means start
again from it (without `seq` that cannot be told from a late message, so it is ignored until the
device's clock passes its old time). Status messages never move device time: a last will
carries the `ts` of the connection that set it. Duplicate deliveries (a repeated
`(device, seq)`) are for the caller to drop, as ingest does.

Rule states per device: pending (condition holds, waiting out `for`), active (raised), and
clearing (active, clear condition holds, waiting out `clear_for`). An active threshold alarm
clears when its `clear_when` holds and its `when` does not (without `clear_when`: when `when`
no longer holds), so overlapping thresholds set by an override cannot make it flap.

Components. A raised/cleared event that names a `detail.component` (a fire panel's detector) is
tracked per component: the rule's alarm is raised by the first, raised again (same alarm, one
more occurrence, `components` in its detail) by each further component, and cleared only when
the last one clears. A cleared event without a component (a panel reset) clears them all.
"""

from __future__ import annotations

import sys
from collections import deque
from typing import Any, Literal, TypeVar

import msgspec

from ground.contract import Kind, Message
from ground.events import AlarmEvent
from ground.severity import Severity
from rules.catalogue import OFFLINE, Catalogue, DeviceRules, Rule
from rules.conditions import Window

# 2: a device's empty state (no pending, clearing, active, components, means; no interval or
# seq) is left out; format 1 wrote it all out for every device, and is still read.
SNAPSHOT_FORMAT = 2
_T = TypeVar("_T")
READABLE_FORMATS = (1, 2)
# Devices per part of a snapshot (`snapshot_parts`): about 300 kB of JSON for a thousand elevators.
PART_DEVICES = 1_000


class _RollingMean:
    """Mean of the readings in (ts - window, ts]: a deque and a running sum, O(1) amortised.

    Unknown until the device has been watched for a whole window, so that the first readings
    after a device appears (or the engine starts without a snapshot) are not taken for an hour's.
    """

    __slots__ = ("key", "metric", "ms", "readings", "since", "total")

    def __init__(self, window: Window) -> None:
        self.key = window.key
        self.metric = window.metric
        self.ms = window.ms
        self.readings: deque[tuple[int, float]] = deque()
        self.total = 0.0
        self.since: int | None = None  # device time of the first reading

    def add(self, ts: int, value: float) -> None:
        if self.since is None:
            self.since = ts
        self.readings.append((ts, value))
        self.total += value

    def mean_at(self, ts: int) -> float | None:
        readings = self.readings
        cutoff = ts - self.ms
        while readings and readings[0][0] <= cutoff:
            self.total -= readings.popleft()[1]
        if not readings:
            self.total = 0.0  # no rounding error carried over
            return None
        if self.since is None or self.since > cutoff:
            return None
        return self.total / len(readings)


class _SharedEmpty(dict[str, Any]):
    """The empty state that every device without any shares; it refuses to be written to.

    Four empty dicts per device (pending, clearing, active, components) were 256 bytes of every
    device, and most devices never have any of them. A device gets dicts of its own (`_own`)
    before its first write; a write that missed that fails loudly instead of reaching others.
    """

    __slots__ = ()

    def __setitem__(self, key: str, value: Any) -> None:
        raise TypeError("a device's shared empty state: give it a dict of its own first")

    def setdefault(self, *args: Any) -> Any:
        raise TypeError("a device's shared empty state: give it a dict of its own first")

    def update(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("a device's shared empty state: give it a dict of its own first")


_EMPTY: Any = _SharedEmpty()


def _own(state: dict[str, _T]) -> dict[str, _T]:
    """The device's own dict for this state: the one it has, or a new one instead of the shared empty one."""
    return {} if state is _EMPTY else state


class _Device:
    """What the engine knows of one device."""

    __slots__ = (
        "active",
        "clearing",
        "components",
        "device_id",
        "device_type",
        "in_maintenance",
        "interval_s",
        "last_seq",
        "last_ts",
        "means",
        "offline_ms",
        "pending",
        "rules",
        "seen_arrival",
        "site",
        "ts_arrival",
        "values",
    )

    def __init__(self, site: str, device_type: str, device_id: str, rules: DeviceRules) -> None:
        # One string per site and per type for the whole fleet, not one per device.
        self.site = sys.intern(site)
        self.device_type = sys.intern(device_type)
        self.device_id = device_id
        self.rules = rules
        self.values: dict[str, Any] = {}
        self.means = tuple(_RollingMean(w) for w in rules.windows)  # most types: the one empty tuple
        self.last_ts: int | None = None  # newest device time seen
        self.last_seq: int | None = None  # highest seq seen
        self.ts_arrival = 0  # wall clock when the message with last_ts arrived
        self.seen_arrival = 0  # wall clock of the last sign of life
        self.interval_s: int | None = None  # the device's own reporting interval, if registered with one
        self.offline_ms = 0
        self.pending: dict[str, int] = _EMPTY  # rule id → device time its condition began
        self.clearing: dict[str, int] = _EMPTY  # rule id → device time its clear condition began
        self.active: dict[str, tuple[int, Severity]] = _EMPTY  # rule id → (raised ts, class raised with)
        self.components: dict[str, set[str]] = _EMPTY  # rule id → components in alarm (events naming one)
        self.in_maintenance = False

    def device_time(self, now_ms: int) -> int | None:
        """Device time estimated at wall-clock `now_ms`."""
        if self.last_ts is None:
            return None
        return self.last_ts + max(now_ms - self.ts_arrival, 0)


class Engine:
    """Evaluates the catalogue's rules on device messages; keeps per-device state, snapshots it."""

    def __init__(self, catalogue: Catalogue, state: dict[str, Any] | None = None) -> None:
        self.catalogue = catalogue
        self.version = 0  # increases whenever pending or active state changes
        self._devices: dict[tuple[str, str], _Device] = {}
        self._factor = catalogue.offline.factor
        self._offline_by_interval: dict[int, int] = {}
        # Alarms to hand out on the next call: those a restore found orphaned by a changed catalogue.
        self._backlog: list[AlarmEvent] = []
        if state is not None:
            self._restore(state)

    # Messages.

    def process(self, m: Message, arrival_ms: int) -> list[AlarmEvent]:
        """Apply one decoded message; `arrival_ms` is the wall-clock time it was received."""
        out: list[AlarmEvent] = []
        if self._backlog:
            out.extend(self._backlog)
            self._backlog.clear()
        dev = self._devices.get((m.site, m.device_id))
        if dev is None or dev.device_type != m.device_type:
            dev = self._add_device(m.site, m.device_type, m.device_id, None, arrival_ms, out)
        ts = m.ts
        kind = m.kind
        body = m.body
        if kind is Kind.STATUS:
            if body.get("state") == "offline":
                self._status_offline(dev, ts, arrival_ms, out)
                return out
            dev.seen_arrival = arrival_ms
            if OFFLINE in dev.active:
                self._back_online(dev, ts, arrival_ms, out)
            return out
        dev.seen_arrival = arrival_ms
        if OFFLINE in dev.active:
            self._back_online(dev, ts, arrival_ms, out)
        last = dev.last_ts
        in_order = last is None or ts >= last
        seq = m.seq
        if seq is not None:
            last_seq = dev.last_seq
            if last_seq is None or seq > last_seq:
                dev.last_seq = seq
                if not in_order:
                    self._clock_set_back(dev, ts)
                    in_order = True
        if in_order:
            dev.last_ts = ts
            dev.ts_arrival = arrival_ms
        if kind is Kind.TELEMETRY:
            if in_order:
                self._telemetry(dev, ts, body, out)
        else:
            if in_order and (dev.pending or dev.clearing):
                self._due(dev, ts, out)
            self._event(dev, ts, body, in_order, out)
        return out

    def tick(self, now_ms: int) -> list[AlarmEvent]:
        """Fire what is due by wall-clock `now_ms` with no new message: durations and offline."""
        out: list[AlarmEvent] = []
        if self._backlog:
            out.extend(self._backlog)
            self._backlog.clear()
        for dev in self._devices.values():
            if dev.pending or dev.clearing:
                at = dev.device_time(now_ms)
                if at is not None:
                    self._due(dev, at, out)
            offline = dev.rules.offline
            if (
                offline is not None
                and OFFLINE not in dev.active
                and now_ms - dev.seen_arrival >= dev.offline_ms
                and not (dev.in_maintenance and offline.held_in_maintenance)
            ):
                # Device time of the last sign of life, plus the allowed silence.
                last = dev.device_time(dev.seen_arrival)
                began = (dev.seen_arrival if last is None else last) + dev.offline_ms
                detail = {
                    "reason": "silent",
                    "last_ts": dev.last_ts,
                    "interval_s": dev.interval_s or dev.rules.interval_s,
                    "silent_s": (now_ms - dev.seen_arrival) // 1000,
                }
                self._raise(dev, offline, began, detail, out)
        return out

    def register_device(
        self,
        site: str,
        device_type: str,
        device_id: str,
        interval_s: int | None = None,
        arrival_ms: int = 0,
    ) -> None:
        """Know a device ahead: it is flagged offline if it has not reported `factor` times its interval after
        `arrival_ms` (wall clock). `interval_s` overrides the type's reporting interval for it."""
        dev = self._devices.get((site, device_id))
        if dev is None or dev.device_type != device_type:
            out: list[AlarmEvent] = []
            dev = self._add_device(site, device_type, device_id, interval_s, arrival_ms, out)
            self._backlog.extend(out)
        elif interval_s is not None and interval_s != dev.interval_s:
            dev.interval_s = interval_s
            dev.offline_ms = self._offline_ms(dev.rules, interval_s)
            self.version += 1

    def clear(self, site: str, device_id: str, rule: str) -> None:
        """Forget an active alarm without an event: for instantaneous events, once their ticket is resolved.

        A threshold rule whose condition still holds raises again from the device's next message.
        """
        dev = self._devices.get((site, device_id))
        if dev is not None and rule in dev.active:
            del dev.active[rule]
            dev.clearing.pop(rule, None)
            dev.components.pop(rule, None)
            self.version += 1

    def active(self) -> list[tuple[str, str, str]]:
        """(site, device_id, rule) of every active alarm, sorted."""
        return sorted((d.site, d.device_id, r) for d in self._devices.values() for r in d.active)

    # Evaluation.

    def _telemetry(self, dev: _Device, ts: int, body: dict[str, Any], out: list[AlarmEvent]) -> None:
        if dev.pending or dev.clearing:
            # Values hold until the next report, so whatever fell due before this message did so
            # on the old values: a replay without ticks raises what a live run's tick raised.
            self._due(dev, ts, out)
        values = dev.values
        known = len(values)
        values.update(body)
        if len(values) != known:
            values = dev.values = _interned(values)
        rules = dev.rules
        if dev.means:
            for mean in dev.means:
                value = body.get(mean.metric)
                if value is not None:
                    mean.add(ts, value)
                values[mean.key] = mean.mean_at(ts)
        if rules.maintenance is not None:
            dev.in_maintenance = rules.maintenance.test(values)
        in_maintenance = dev.in_maintenance
        pending = dev.pending
        active = dev.active
        clearing = dev.clearing
        for rule, when, clear_when in rules.checks:
            rid = rule.id
            hit = when(values)
            if rid in active:
                if hit:
                    if rid in clearing:
                        del clearing[rid]
                        self.version += 1
                    continue
                if clear_when is None or clear_when(values):
                    if rule.clear_for_ms == 0:
                        self._clear(dev, rid, ts, out)
                    elif rid not in clearing:
                        clearing = dev.clearing = _own(clearing)
                        clearing[rid] = ts
                        self.version += 1
                elif rid in clearing:
                    del clearing[rid]
                    self.version += 1
            elif hit and not (in_maintenance and rule.held_in_maintenance):
                if rid in pending:
                    continue  # still waiting: _due above raised whatever had waited long enough
                if rule.for_ms == 0:
                    self._raise(dev, rule, ts, self._detail(rule, values), out)
                else:
                    pending = dev.pending = _own(pending)
                    pending[rid] = ts
                    self.version += 1
            elif rid in pending:
                del pending[rid]
                self.version += 1

    def _clock_set_back(self, dev: _Device, ts: int) -> None:
        """Start pending durations and rolling means again from the device's new time `ts`."""
        for states in (dev.pending, dev.clearing):
            for rid in states:
                states[rid] = ts
        dev.means = tuple(_RollingMean(Window(m.key, m.metric, m.ms)) for m in dev.means)
        for mean in dev.means:
            dev.values[mean.key] = None
        self.version += 1

    def _due(self, dev: _Device, at: int, out: list[AlarmEvent]) -> None:
        """Raise the pending and clear the clearing rules whose duration has passed by device time `at`."""
        by_id = dev.rules.by_id
        for rid, began in list(dev.pending.items()):
            rule = by_id.get(rid)
            if rule is None:
                del dev.pending[rid]
                self.version += 1
            elif at - began >= rule.for_ms:
                del dev.pending[rid]
                self._raise(dev, rule, began, self._detail(rule, dev.values), out)
        for rid, began in list(dev.clearing.items()):
            rule = by_id.get(rid)
            if rule is None or at - began >= rule.clear_for_ms:
                self._clear(dev, rid, began, out)

    def _event(
        self, dev: _Device, ts: int, body: dict[str, Any], in_order: bool, out: list[AlarmEvent]
    ) -> None:
        rules = dev.rules.events.get(body["code"])
        if not rules:
            return
        state = body.get("state")
        if state is not None and not in_order:
            return  # a stale raised/cleared would undo a newer one
        inner = body.get("detail") or {}
        detail = {"code": body["code"], "state": state, "detail": inner}
        component = inner.get("component") if state is not None else None
        if not isinstance(component, str) or not component:
            component = None
        for rule in rules:
            rid = rule.id
            if state == "cleared":
                if rid in dev.active and not self._others_in_alarm(dev, rid, component):
                    self._clear(dev, rid, ts, out, detail)
            elif dev.in_maintenance and rule.held_in_maintenance:
                continue
            elif state is None or rid not in dev.active:
                # Without a state the event is instantaneous: each occurrence is news.
                if component is not None:
                    dev.components = _own(dev.components)
                    dev.components[rid] = {component}
                    detail = {**detail, "components": [component]}
                self._raise(dev, rule, ts, detail, out)
            elif component is not None:
                self._another_component(dev, rule, component, ts, detail, out)

    def _others_in_alarm(self, dev: _Device, rid: str, component: str | None) -> bool:
        """Forget `component`'s alarm; whether other components of the rule are still in alarm."""
        if component is None:
            return False  # a clear without a component (a panel reset) clears them all
        components = dev.components.get(rid)
        if not components:
            return False
        components.discard(component)
        self.version += 1
        return bool(components)

    def _another_component(
        self, dev: _Device, rule: Rule, component: str, ts: int, detail: dict[str, Any], out: list[AlarmEvent]
    ) -> None:
        """A further component raises an active alarm: one more occurrence, the raise's time kept."""
        dev.components = _own(dev.components)
        components = dev.components.setdefault(rule.id, set())
        if component in components:
            return  # the same component again: nothing new
        components.add(component)
        self.version += 1
        detail = {**detail, "components": sorted(components)}
        out.append(_event("raised", dev, rule.id, dev.active[rule.id][1], ts, rule.title, detail))

    def _status_offline(self, dev: _Device, ts: int, arrival_ms: int, out: list[AlarmEvent]) -> None:
        offline = dev.rules.offline
        if offline is None or OFFLINE in dev.active:
            return
        if dev.in_maintenance and offline.held_in_maintenance:
            return
        self._raise(dev, offline, self._now_ts(dev, ts, arrival_ms), {"reason": "status"}, out)

    def _back_online(self, dev: _Device, ts: int, arrival_ms: int, out: list[AlarmEvent]) -> None:
        # Not before the offline alarm's own ts, which a tick may have estimated.
        self._clear(dev, OFFLINE, max(self._now_ts(dev, ts, arrival_ms), dev.active[OFFLINE][0]), out)

    def _now_ts(self, dev: _Device, ts: int, arrival_ms: int) -> int:
        """The message's ts, or the device time at its arrival when the ts is older than what was seen."""
        if dev.last_ts is None or ts >= dev.last_ts:
            return ts
        return dev.last_ts + max(arrival_ms - dev.ts_arrival, 0)

    @staticmethod
    def _detail(rule: Rule, values: dict[str, Any]) -> dict[str, Any]:
        return {key: values.get(key) for key in rule.reads}

    def _raise(
        self, dev: _Device, rule: Rule, ts: int, detail: dict[str, Any], out: list[AlarmEvent]
    ) -> None:
        dev.active = _own(dev.active)
        dev.active[rule.id] = (ts, rule.severity)
        self.version += 1
        out.append(_event("raised", dev, rule.id, rule.severity, ts, rule.title, detail))

    def _clear(
        self,
        dev: _Device,
        rid: str,
        ts: int,
        out: list[AlarmEvent],
        detail: dict[str, Any] | None = None,
    ) -> None:
        _, severity = dev.active.pop(rid)
        dev.clearing.pop(rid, None)
        dev.components.pop(rid, None)
        self.version += 1
        rule = dev.rules.by_id.get(rid)
        if detail is None:
            detail = self._detail(rule, dev.values) if rule is not None else {}
        title = rule.title if rule is not None else rid
        out.append(_event("cleared", dev, rid, severity, ts, title, detail))

    # Devices.

    def _offline_ms(self, rules: DeviceRules, interval_s: int | None) -> int:
        seconds = interval_s or rules.interval_s
        # One int per reporting interval, shared by its devices, rather than one each (32 bytes).
        offline_ms = self._offline_by_interval.get(seconds)
        if offline_ms is None:
            offline_ms = self._offline_by_interval[seconds] = int(self._factor * seconds * 1000)
        return offline_ms

    def _add_device(
        self,
        site: str,
        device_type: str,
        device_id: str,
        interval_s: int | None,
        arrival_ms: int,
        out: list[AlarmEvent],
    ) -> _Device:
        old = self._devices.get((site, device_id))
        if old is not None:
            # The id now reports as another type: the old device's alarms end here.
            for rid in list(old.active):
                self._clear(old, rid, old.last_ts or 0, out)
        rules = self.catalogue.for_device(site, device_type, device_id)
        dev = _Device(site, device_type, device_id, rules)
        dev.interval_s = interval_s
        dev.offline_ms = self._offline_ms(rules, interval_s)
        dev.seen_arrival = arrival_ms
        dev.ts_arrival = arrival_ms
        self._devices[(dev.site, device_id)] = dev
        self.version += 1
        return dev

    # State.

    def snapshot(self) -> dict[str, Any]:
        """The whole state as JSON-serialisable data, for `Engine(catalogue, state)` after a restart."""
        return {
            "format": SNAPSHOT_FORMAT,
            "version": self.version,
            "devices": [_saved(d) for d in self._devices.values()],
        }

    def snapshot_parts(self, size: int = PART_DEVICES) -> list[bytearray]:
        """The devices of `snapshot()` as JSON arrays of at most `size` devices, encoded a device at a time.

        With a large fleet, the whole snapshot as objects took more memory than the engine's own
        state (about 1 kB per device, every few seconds), and as one buffer it was copied whole
        on its way into the database, three times over; this way the largest piece is a part.
        """
        parts: list[bytearray] = []
        buffer = bytearray()
        for i, dev in enumerate(self._devices.values()):
            if i % size:
                buffer += b","
            else:
                buffer = bytearray(b"[")
                parts.append(buffer)
            _ENCODER.encode_into(_saved(dev), buffer, -1)
        for part in parts:
            part += b"]"
        return parts

    def snapshot_head(self, **extra: Any) -> bytes:
        """`snapshot()` without its devices, plus `extra` keys (the count of parts, say), as JSON."""
        return _ENCODER.encode({"format": SNAPSHOT_FORMAT, "version": self.version, **extra})

    def _restore(self, state: dict[str, Any]) -> None:
        if state.get("format") not in READABLE_FORMATS:
            raise ValueError(f"engine state format {state.get('format')!r}, expected {SNAPSHOT_FORMAT}")
        for item in state["devices"]:
            rules = self.catalogue.for_device(item["site"], item["device_type"], item["device_id"])
            dev = _Device(item["site"], item["device_type"], item["device_id"], rules)
            dev.interval_s = item.get("interval_s")
            dev.offline_ms = self._offline_ms(rules, dev.interval_s)
            dev.last_ts = item["last_ts"]
            dev.last_seq = item.get("last_seq")
            dev.ts_arrival = item["ts_arrival"]
            dev.seen_arrival = item["seen_arrival"]
            dev.values = _interned(item["values"])
            saved = item.get("means", {})
            for mean in dev.means:
                window = saved.get(mean.key, {})
                for ts, value in window.get("readings", ()):
                    mean.add(ts, value)
                mean.since = window.get("since")
                if dev.last_ts is not None:
                    dev.values[mean.key] = mean.mean_at(dev.last_ts)
            if rules.maintenance is not None:
                dev.in_maintenance = rules.maintenance.test(dev.values)
            # Keep pending durations only for rules the (possibly changed) catalogue still has.
            pending = {}
            for rid, began in item.get("pending", {}).items():
                rule = rules.by_id.get(rid)
                if rule is not None and rule.when is not None:
                    pending[rid] = began
            dev.pending = pending or _EMPTY
            dev.active = {rid: (ts, Severity(s)) for rid, (ts, s) in item.get("active", {}).items()} or _EMPTY
            dev.clearing = {
                rid: c for rid, c in item.get("clearing", {}).items() if rid in dev.active
            } or _EMPTY
            # Absent from snapshots written before components were tracked.
            dev.components = {
                rid: set(c) for rid, c in item.get("components", {}).items() if rid in dev.active
            } or _EMPTY
            self._devices[(dev.site, dev.device_id)] = dev
            # Alarms of rules the catalogue no longer has (or disabled) end with the restart.
            for rid in [r for r in dev.active if r not in rules.by_id]:
                self._clear(dev, rid, dev.last_ts or 0, self._backlog)
        self.version = int(state.get("version", 0)) + 1


_ENCODER = msgspec.json.Encoder()


def _saved(d: _Device) -> dict[str, Any]:
    """One device in the snapshot: what every device has, then only the state it holds (most hold none).

    The snapshot is built whole while the fleet grows (every few seconds); with 10,000 devices,
    the empty state written out for each device was most of it.
    """
    item: dict[str, Any] = {
        "site": d.site,
        "device_type": d.device_type,
        "device_id": d.device_id,
        "last_ts": d.last_ts,
        "ts_arrival": d.ts_arrival,
        "seen_arrival": d.seen_arrival,
        "values": {k: v for k, v in d.values.items() if not k.startswith("mean(")},
    }
    if d.interval_s is not None:
        item["interval_s"] = d.interval_s
    if d.last_seq is not None:
        item["last_seq"] = d.last_seq
    if d.means:
        item["means"] = {
            m.key: {"since": m.since, "readings": [list(r) for r in m.readings]} for m in d.means
        }
    if d.pending:
        item["pending"] = dict(d.pending)
    if d.clearing:
        item["clearing"] = dict(d.clearing)
    if d.active:
        item["active"] = {rid: [ts, str(s)] for rid, (ts, s) in d.active.items()}
    components = {rid: sorted(c) for rid, c in d.components.items() if c}
    if components:
        item["components"] = components
    return item


def _interned(values: dict[str, Any]) -> dict[str, Any]:
    """The values with their metric names interned: each name is kept once, not once per device."""
    # Names decoded from JSON are new strings in every message, and a device's dict keeps those
    # of the message that brought each name first.
    return {sys.intern(k): v for k, v in values.items()}


def _event(
    kind: Literal["raised", "cleared"],
    dev: _Device,
    rule_id: str,
    severity: Severity,
    ts: int,
    title: str,
    detail: dict[str, Any],
) -> AlarmEvent:
    """An alarm event of one of the device's rules."""
    return AlarmEvent(
        kind=kind,
        site=dev.site,
        device_type=dev.device_type,
        device_id=dev.device_id,
        rule=rule_id,
        severity=severity,
        ts=ts,
        title=title,
        detail=detail,
    )
