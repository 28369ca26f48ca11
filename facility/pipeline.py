"""Between the collector, the rules engine and tickets: messages in, alarms and tickets out, in order."""

from __future__ import annotations

import collections
import dataclasses
import functools
import hashlib
import json
import logging
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, cast

import msgspec
import paho.mqtt.client as mqtt
from sqlalchemy import Table, Text, delete, insert, select, update
from sqlalchemy import cast as cast_as
from sqlalchemy.engine import Engine as SqlEngine
from sqlalchemy.orm import Session

from collector.inbox import DeadLetter, truncated
from collector.lineprotocol import Point, Sink
from ground.clock import now_ms
from ground.contract import GATEWAY, Message, alarm_topic
from ground.events import AlarmEvent
from ground.severity import Severity
from records.db import Database, EncodedJson, is_transient
from records.devices import DeviceDirectory
from records.models import Alarm, Device, EngineState, EngineStatePart
from rules.engine import Engine
from rules.parents import gateway_event
from rules.rule import OFFLINE
from tickets.notify import Dispatcher, alarm_payload
from tickets.service import ChangeKind, TicketChange, TicketService
from tickets.timeline import alarm_point

log = logging.getLogger(__name__)

FLUSH_EVERY_TICKS = 3
OFFLINE_RUN = 200  # offline alarms recorded in one transaction, and at most per message batch or tick

SetAside = Callable[[Sequence[DeadLetter]], None]


class Pipeline:
    """Messages → device directory and rules engine → alarms and tickets; timers through `tick`."""

    def __init__(
        self,
        engine: Engine,
        tickets: TicketService,
        devices: DeviceDirectory,
        db: Database,
        dispatcher: Dispatcher,
        state_db: Database,
        *,
        record: Sink,
        set_aside: SetAside,
        alarm_client: mqtt.Client | None = None,
        unapplied: Sequence[dict[str, Any]] = (),
        state_id: int = 1,
    ) -> None:
        self.engine = engine
        self.state_id = state_id  # the snapshot's row: one per worker where several share the records
        self.tickets = tickets
        self.devices = devices
        self.db = db
        self.state_db = state_db  # where the engine's snapshot goes: the records, or its own file
        self.dispatcher = dispatcher
        self.alarm_client = alarm_client
        self.alarm_events = 0
        self._lock = threading.Lock()  # the collector thread and the timer thread share the engine
        # Events the records have not taken yet; kept in the snapshot, so a restart does not lose them.
        self._unapplied: collections.deque[AlarmEvent] = collections.deque(
            event_from_dict(e) for e in unapplied
        )
        self._unapplied_changed = bool(unapplied)
        self._saved_version = -1
        # Digests of the snapshot's parts as last committed; None until this process has saved one.
        self._saved_parts: list[bytes] | None = None
        self._ticks = 0
        self.record = record  # where alarm points go (the collector's buffer)
        self.set_aside = set_aside  # where refused events go (the collector's dead letters)
        self.refused = 0
        self._readings: dict[str, int] = {}

    def handle(self, messages: Sequence[Message], arrival_ms: int | None = None) -> None:
        """Collector handler: runs before the batch is committed; the broker hears of it only after.

        `arrival_ms`: when the batch arrived, for benchmarks on a simulated clock; now if None.
        """
        arrival = now_ms() if arrival_ms is None else arrival_ms
        gateways = [m for m in messages if m.device_type == GATEWAY]
        if gateways:
            # A gateway's own status is no device's message: it is the parent of an outage.
            messages = [m for m in messages if m.device_type != GATEWAY]
        self.devices.observe(messages, arrival)
        with self._lock:
            readings = self._readings
            for m in messages:
                readings[m.site] = readings.get(m.site, 0) + 1
            self._unapplied.extend(e for m in messages for e in self.engine.process(m, arrival))
            self._unapplied.extend(e for m in gateways if (e := gateway_event(m)) is not None)
            self._apply_pending()

    def submit(self, events: list[AlarmEvent]) -> None:
        """Alarm events from elsewhere (patrols), applied in line with the engine's."""
        with self._lock:
            self._unapplied.extend(events)
            self._apply_pending()

    def register(self, device: Device) -> None:
        """Tell the engine of a device registered ahead, so it is flagged offline if it never reports."""
        with self._lock:
            self.engine.register_device(
                device.site, device.device_type, device.device_id, device.interval_s, now_ms()
            )

    def take_readings(self) -> dict[str, int]:
        """Messages accepted per site since the last call."""
        with self._lock:
            readings, self._readings = self._readings, {}
        return readings

    def tick(self, at_ms: int | None = None) -> None:
        """Timer: durations and offline that fire with no new message; now and then, save state.

        `at_ms`: the wall-clock time to judge at, for tests that move time on; now if None.
        """
        with self._lock:
            self._unapplied.extend(self.engine.tick(now_ms() if at_ms is None else at_ms))
            self._apply_pending()
        self._ticks += 1
        # The device directory and the engine's snapshot grow with the fleet: written every few
        # seconds, they keep a restart close to the last state without holding up the collector.
        if self._ticks % FLUSH_EVERY_TICKS == 0:
            self.devices.flush()
            self.save_if_changed()

    def _apply_pending(self) -> None:
        """Record alarm events as alarms and tickets, in the order the engine made them.

        Runs under the engine's lock, so a raise from the timer and a clear from the collector
        cannot land in the wrong order. When the database is unavailable (connection lost, locked,
        read-only, full), the event stays first in line and is tried again on the next message or
        tick: the engine already counts it as done, and every event after it would fail alike.
        An event the database refuses for what it holds is set aside as a dead letter with the
        reason, so that no single event can hold up the others (a fire alarm behind it).
        """
        devices: set[tuple[str, str]] = set()
        points: list[Point] = []
        offline = collections.Counter(
            e.site for e in self._unapplied if e.rule == OFFLINE and e.kind == "raised"
        )
        self._offline_last()
        budget = OFFLINE_RUN  # offline alarms per call: the rest wait for the next message or tick
        while self._unapplied:
            event = self._unapplied[0]
            if event.rule == OFFLINE:
                if budget <= 0:
                    break
                run = self._offline_run()
                if len(run) > 1:
                    # An outage's offline alarms come by the thousand: a transaction per run, not per
                    # alarm, so a fire alarm behind them waits for seconds, not minutes.
                    budget -= len(run)
                    try:
                        ids = self.tickets.apply_alarms(run, [_waiting(offline, e) for e in run])
                    except Exception as exc:
                        for e in run:  # not recorded: counted again on the next try
                            offline[e.site] += e.kind == "raised"
                        if is_transient(exc):
                            log.warning("could not record %d offline alarms (%s); they wait", len(run), exc)
                            break
                        # The records refused one of them: this one alone, below, to find it.
                    else:
                        points.extend(alarm_point(e, ticket) for e, ticket in zip(run, ids, strict=True))
                        self.alarm_events += len(run)
                        devices.update((e.site, e.device_id) for e in run)
                        for _ in run:
                            self._unapplied.popleft()
                        self._unapplied_changed = True
                        continue
                budget -= 1
            waiting = _waiting(offline, event)
            try:
                points.append(alarm_point(event, self.tickets.apply_alarm(event, offline_waiting=waiting)))
            except Exception as exc:
                if is_transient(exc):
                    log.warning(
                        "could not record %s %s on %s/%s (%s); %d event(s) wait for the next try",
                        event.kind,
                        event.rule,
                        event.site,
                        event.device_id,
                        type(exc).__name__,
                        len(self._unapplied),
                    )
                    break
                log.exception("the records refused %s %s on %s/%s; set aside", *_names(event))
                self._refuse(event, exc)
            else:
                self.alarm_events += 1
                devices.add((event.site, event.device_id))
            self._unapplied.popleft()
            self._unapplied_changed = True
        if points:
            self.record(points)
        if self.alarm_client is not None:
            for site, device_id in devices:
                self.dispatcher.submit(functools.partial(self._publish_alarms, site, device_id))

    def _offline_last(self) -> None:
        """Every other alarm ahead of the offline ones, each kind in its own order.

        An outage brings offline alarms by the thousand; a fire alarm that arrives behind them must
        not wait for them. Only one device's raise and clear of one rule must keep their order,
        and the offline rule's stay in theirs.
        """
        queue = self._unapplied
        first = [e for e in queue if e.rule != OFFLINE]
        if 0 < len(first) < len(queue):
            self._unapplied = collections.deque(first + [e for e in queue if e.rule == OFFLINE])

    def _offline_run(self) -> list[AlarmEvent]:
        """The offline alarms first in line, up to OFFLINE_RUN of them: recorded in one transaction."""
        run: list[AlarmEvent] = []
        for event in self._unapplied:
            if event.rule != OFFLINE or len(run) == OFFLINE_RUN:
                break
            run.append(event)
        return run

    def _refuse(self, event: AlarmEvent, exc: Exception) -> None:
        """Keep an event the records refused as a dead letter (stage "alarm") with the reason."""
        self.refused += 1
        reason = f"the records refused the alarm: {exc!r}"[:500]
        payload = json.dumps(event_to_dict(event), default=repr)
        topic = f"{event.site}/{event.device_type}/{event.device_id}/{event.rule}"
        self.set_aside([DeadLetter(now_ms(), "alarm", topic, reason, truncated(payload))])

    def _publish_alarms(self, site: str, device_id: str) -> None:
        """Publish a device's active alarms (on the dispatcher thread)."""
        with self.db.read() as s:
            active = s.scalars(
                select(Alarm).where(Alarm.site == site, Alarm.device_id == device_id, Alarm.active.is_(True))
            ).all()
            alarms = [
                {
                    "rule": a.rule,
                    "class": a.severity,
                    "since": a.raised_at.isoformat(),
                    "ticket_id": a.ticket_id,
                }
                for a in active
            ]
        topic = alarm_topic(site, device_id)
        # Retained while active; an empty retained message removes it when nothing is active.
        payload = alarm_payload(device_id, alarms) if alarms else b""
        assert self.alarm_client is not None
        self.alarm_client.publish(topic, payload, qos=1, retain=True)

    def on_ticket_change(self, change: TicketChange) -> None:
        """Ticket listener: a resolved ticket clears its latched (instantaneous-event) alarms."""
        if change.kind is not ChangeKind.RESOLVED or change.device_id is None:
            return
        with self.db.read() as s:
            latched = s.scalars(
                select(Alarm).where(Alarm.ticket_id == change.ticket_id, Alarm.active.is_(False))
            ).all()
            rules = {a.rule for a in latched if a.detail.get("latched")}
        with self._lock:
            for rule in rules:
                self.engine.clear(change.site, change.device_id, rule)
        if rules and self.alarm_client is not None:
            self.dispatcher.submit(functools.partial(self._publish_alarms, change.site, change.device_id))

    def save_if_changed(self) -> None:
        """Snapshot the engine when its pending or active state changed, so a restart keeps it.

        The snapshot is a head and parts of up to a thousand devices each, in one transaction; a
        part the same as when last saved is not written again.
        """
        with self._lock:
            if self.engine.version == self._saved_version and not self._unapplied_changed:
                return
            version = self.engine.version
            parts = self.engine.snapshot_parts()
            head = self.engine.snapshot_head(
                parts=len(parts), unapplied=[event_to_dict(e) for e in self._unapplied]
            )
            self._unapplied_changed = False
        digests = [hashlib.blake2b(part, digest_size=16).digest() for part in parts]
        saved = self._saved_parts or []
        changed = [
            (n, EncodedJson(part))
            for n, (part, digest) in enumerate(zip(parts, digests, strict=True))
            if n >= len(saved) or saved[n] != digest
        ]
        del parts  # only the changed ones are kept, until written
        saved_at = datetime.now(UTC)
        with self.state_db.session() as s:
            # Core statements: the snapshot is JSON already, and an ORM row would read it back first.
            _put(s, STATES, {"id": self.state_id}, {"saved_at": saved_at, "state": EncodedJson(head)})
            for n, devices in changed:
                _put(s, PARTS, {"state_id": self.state_id, "part": n}, {"devices": devices})
            if self._saved_parts is None or len(digests) < len(self._saved_parts):
                # Parts past the end: of a larger fleet, or of the process before a restart.
                s.connection().execute(
                    delete(PARTS).where(PARTS.c.state_id == self.state_id, PARTS.c.part >= len(digests))
                )
        # Only once committed: after a failed save, the next writes what the database lacks.
        self._saved_parts = digests
        self._saved_version = version


STATES = cast(Table, EngineState.__table__)
PARTS = cast(Table, EngineStatePart.__table__)
_PART = msgspec.json.Decoder(list[dict[str, Any]])


def _put(s: Session, table: Table, key: dict[str, Any], values: dict[str, Any]) -> None:
    """Update the row with this key, or insert it."""
    where = [table.c[column] == value for column, value in key.items()]
    if not s.connection().execute(update(table).where(*where).values(**values)).rowcount:
        s.connection().execute(insert(table).values(**key, **values))


def _names(event: AlarmEvent) -> tuple[str, str, str, str]:
    return event.kind, event.rule, event.site, event.device_id


def _waiting(offline: collections.Counter[str], event: AlarmEvent) -> int:
    """Offline raises of the event's site still to come after it in this batch (counted down as they go).

    An outage is one incident from its first device, not after a few tickets of their own.
    """
    if event.rule != OFFLINE or event.kind != "raised":
        return 0
    offline[event.site] -= 1
    return offline[event.site]


def event_to_dict(event: AlarmEvent) -> dict[str, Any]:
    """An alarm event as JSON-serialisable data, for the snapshot."""
    doc = dataclasses.asdict(event)
    doc["severity"] = event.severity.value
    return doc


def event_from_dict(doc: dict[str, Any]) -> AlarmEvent:
    """An alarm event back from `event_to_dict`."""
    return AlarmEvent(**{**doc, "severity": Severity(doc["severity"])})


def create_state_tables(engine: SqlEngine) -> None:
    """The snapshot's tables in a database of their own, if not there yet (the records' come by migration)."""
    EngineState.metadata.create_all(engine, tables=[STATES, PARTS])


def load_engine_state(db: Database, state_id: int = 1) -> dict[str, Any] | None:
    """The engine's last snapshot, if any (a worker's own, by its `state_id`).

    Its devices are an iterator that decodes a part at a time: read whole, a large fleet's
    snapshot as objects would take several times the engine's own memory at start-up.
    """
    with db.read() as s:
        row = s.get(EngineState, state_id)
        if row is None:
            return None
        state = dict(row.state)
        if "parts" not in state:
            return state  # written whole, by a version before parts
        texts = (
            s.execute(
                select(cast_as(PARTS.c.devices, Text))
                .where(PARTS.c.state_id == state_id)
                .order_by(PARTS.c.part)
            )
            .scalars()
            .all()
        )
    if len(texts) != state["parts"]:
        raise ValueError(f"engine snapshot {state_id}: {len(texts)} of its {state['parts']} parts")
    state["devices"] = (device for text in texts for device in _PART.decode(text))
    return state


def move_engine_state(records: Database, state_db: Database) -> None:
    """Move a snapshot left among the records (by a version before `engine-state.db`) to its file.

    The newer of the two wins, should an older version have run in between; none stays behind in
    the records, where a stale copy could be restored later.
    """
    with records.session() as s:
        old = s.get(EngineState, 1)
        if old is None:
            return
        with state_db.session() as new:
            current = new.get(EngineState, 1)
            if current is None:
                new.add(EngineState(id=1, saved_at=old.saved_at, state=old.state))
            elif old.saved_at > current.saved_at:
                current.saved_at, current.state = old.saved_at, old.state
        s.delete(old)
