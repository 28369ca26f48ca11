"""Use-based maintenance on the collector's path: telemetry of covered devices counted, work orders opened.

The collector hands every batch of messages to `UseMeter.handle`. An index of the plans with a
use rule, by (site, device id) and by (site, device type), lets every other message pass at the
cost of two dictionary look-ups; the index is built again when plans change and by the minute
timer (devices registered since may join a building's plan). Only covered devices' readings touch
the records, in one read and one write per batch.

A work order is opened before the use is written: a crash in between leaves the reading
unacknowledged, and its replay finds the work order there (same plan, device and due date).
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select, tuple_

from ground.clock import from_ms
from ground.contract import Kind, Message
from maintenance.records import Covered, covered, use_rules
from maintenance.usage import Trigger, UseRule, UseState, apply_reading
from maintenance.workorders import WorkOrders
from records.db import Database
from records.models import MaintenancePlan, MaintenanceUse

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Metered:
    """A plan with a use rule, as the index keeps it."""

    plan_id: int
    counter: UseRule | None
    running: UseRule | None


@dataclass
class UseIndex:
    """The plans with a use rule, by the devices they cover."""

    by_device: dict[tuple[str, str], list[Metered]] = field(default_factory=dict)
    by_type: dict[tuple[str, str], list[Metered]] = field(default_factory=dict)

    def plans_of(self, m: Message) -> list[Metered]:
        """The metered plans covering the message's device (none for most messages)."""
        return self.by_device.get((m.site, m.device_id), []) + self.by_type.get((m.site, m.device_type), [])


@dataclass
class _Reached:
    plan_id: int
    device_id: str
    device_type: str
    due: datetime
    trigger: Trigger


class UseMeter:
    """Counts covered devices' use from their telemetry; opens a work order when a threshold is reached."""

    def __init__(self, db: Database, orders: WorkOrders, lock: threading.RLock) -> None:
        self.db = db
        self.orders = orders
        self._lock = lock  # with the calendar timer, which starts use counts again
        self._index = UseIndex()

    def refresh(self) -> None:
        """Build the index again from the plans and the devices they cover."""
        index = UseIndex()
        with self.db.read() as s:
            plans = s.scalars(
                select(MaintenancePlan).where(
                    (MaintenancePlan.counter_metric.is_not(None))
                    | (MaintenancePlan.running_metric.is_not(None))
                )
            ).all()
            for plan in plans:
                counter, running = use_rules(plan)
                metered = Metered(plan.id, counter, running)
                if plan.device_type and not plan.device_ids and not plan.building:
                    index.by_type.setdefault((plan.site, plan.device_type), []).append(metered)
                    continue
                for device in covered(s, plan):
                    index.by_device.setdefault((plan.site, device.device_id), []).append(metered)
        self._index = index  # replaced whole: the collector's thread reads it without a lock

    def handle(self, messages: Sequence[Message]) -> None:
        """Collector handler: telemetry of devices that plans meter; everything else passes at once."""
        index = self._index
        if not index.by_device and not index.by_type:
            return
        readings: list[tuple[Metered, Message]] = []
        for m in messages:
            if m.kind is Kind.TELEMETRY:
                readings.extend((metered, m) for metered in index.plans_of(m))
        if not readings:
            return
        try:
            with self._lock:
                self._count(readings)
        except Exception:
            log.exception("could not count the use of %d readings for maintenance plans", len(readings))

    def _count(self, readings: list[tuple[Metered, Message]]) -> None:
        keys = {(metered.plan_id, m.device_id) for metered, m in readings}
        with self.db.read() as s:
            rows = s.scalars(
                select(MaintenanceUse).where(
                    tuple_(MaintenanceUse.plan_id, MaintenanceUse.device_id).in_(keys)
                )
            ).all()
            states = {
                (r.plan_id, r.device_id): UseState(r.counter_base, r.running_s, r.last_ts, r.last_running)
                for r in rows
            }
        reached: list[_Reached] = []
        by_key: dict[tuple[int, str], list[tuple[Metered, Message]]] = defaultdict(list)
        for metered, m in readings:
            by_key[(metered.plan_id, m.device_id)].append((metered, m))
        for key, batch in by_key.items():
            state = states.setdefault(key, UseState())
            for metered, m in sorted(batch, key=lambda r: r[1].ts):
                trigger = apply_reading(state, from_ms(m.ts), m.body, metered.counter, metered.running)
                if trigger is not None:
                    reached.append(
                        _Reached(metered.plan_id, m.device_id, m.device_type, from_ms(m.ts), trigger)
                    )
        for r in reached:
            self._open(r)
        with self.db.session() as s:
            for (plan_id, device_id), state in states.items():
                row = s.get(MaintenanceUse, (plan_id, device_id))
                if row is None:
                    if s.get(MaintenancePlan, plan_id) is None:
                        continue  # removed since the index was built
                    row = MaintenanceUse(plan_id=plan_id, device_id=device_id)
                    s.add(row)
                row.counter_base, row.running_s = state.counter_base, state.running_s
                row.last_ts, row.last_running = state.last_ts, state.last_running

    def _open(self, r: _Reached) -> None:
        with self.db.read() as s:
            plan = s.get(MaintenancePlan, r.plan_id)
        if plan is not None:
            self.orders.open(plan, Covered(r.device_id, r.device_type), r.due, r.trigger)
