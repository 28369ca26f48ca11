"""How the service's parts meet: each built with what it needs, two cycles closed by relays."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt
from apscheduler.schedulers.base import BaseScheduler

from collector.app import Collector
from collector.inbox import DeadLetter
from collector.lineprotocol import Point
from collector.stores.base import TimeSeriesStore
from facility.pipeline import Pipeline
from facility.worker import engine_state_id
from ground.settings import Settings
from maintenance.service import MaintenanceService, on_ticket_action
from maintenance.timeline import WorkOrderRecorder
from patrol.evaluation import Timing
from patrol.service import PatrolService
from records.db import Database
from records.devices import DeviceDirectory
from rules.engine import Engine
from tickets.courier import Courier
from tickets.courier import Timing as CourierTiming
from tickets.deadlines import Deadlines
from tickets.escalation import Escalation
from tickets.notify import Dispatcher
from tickets.outbox import Outbox
from tickets.recipients import RecipientBook
from tickets.service import TicketChange, TicketService
from tickets.timeline import ChangeRecorder, StatusWriter

T = TypeVar("T")


class Relay(Generic[T]):
    """Hands what it is given to a target bound once, at wiring: how two parts that need each other meet.

    Built before either part, given to the one built first, bound to the other once it exists.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._target: Callable[[T], None] | None = None

    def bind(self, target: Callable[[T], None]) -> None:
        """Connect the target; only once."""
        if self._target is not None:
            raise RuntimeError(f"{self.name} is already bound")
        self._target = target

    def __call__(self, item: T) -> None:
        """Forward one item."""
        if self._target is None:
            raise RuntimeError(f"{self.name} is not bound yet")
        self._target(item)

    def __repr__(self) -> str:
        return f"Relay({self.name!r} → {self._target!r})"


@dataclass(frozen=True)
class Resources:
    """What the wired parts use: the databases, the store, the engine, the notifier threads and the timers."""

    db: Database
    store: TimeSeriesStore
    engine: Engine
    devices: DeviceDirectory
    state_db: Database
    unapplied: Sequence[dict[str, Any]]
    dispatcher: Dispatcher
    timer_jobs: Dispatcher
    scheduler: BaseScheduler
    alarm_client: mqtt.Client | None
    # Who is told of tickets (the recipients file, read again when it changes).
    recipients: Callable[[], RecipientBook] = RecipientBook


@dataclass(frozen=True)
class Parts:
    """The parts that talk to each other, as `wire` built them."""

    tickets: TicketService
    pipeline: Pipeline
    escalation: Escalation
    patrol: PatrolService
    maintenance: MaintenanceService
    collector: Collector
    status: StatusWriter
    outbox: Outbox
    courier: Courier
    deadlines: Deadlines


def wire(settings: Settings, res: Resources) -> Parts:
    """Build the parts that talk to each other, each given at construction what it needs.

    Two cycles are closed by relays, each bound once at the end: the collector hands messages to
    the pipeline and the patrols, which hand points and refused events back to its buffer; tickets
    tell the escalation timers and the pipeline of changes, and both act on tickets.
    """
    record = Relay[Sequence[Point]]("the collector's points")
    set_aside = Relay[Sequence[DeadLetter]]("the collector's dead letters")
    to_escalation = Relay[TicketChange]("escalation")
    to_deadlines = Relay[TicketChange]("deadlines")
    to_pipeline = Relay[TicketChange]("the pipeline")
    outbox = Outbox(res.db, res.recipients, catch_all=settings.webhook_url)
    courier = Courier(
        outbox,
        CourierTiming(
            backoff_s=settings.outbox_backoff_s,
            backoff_max_s=settings.outbox_backoff_max_s,
            give_up_s=settings.outbox_give_up_s,
            timeout_s=settings.outbox_timeout_s,
        ),
    )
    tickets = TicketService(
        res.db,
        reopen_cooldown_s=settings.reopen_cooldown_s,
        outage_devices=settings.outage_devices,
        outage_window_s=settings.outage_window_s,
        # Alarms, ticket changes and site counts go to the time-series store with the readings.
        # The courier wakes for the notifications a change wrote.
        listeners=[to_escalation, to_deadlines, to_pipeline, ChangeRecorder(record), courier.wake],
        # A work order resolves only with its checklist marked, and records who did it when.
        action_checks=[on_ticket_action],
        # Notifications are written in the transaction of the change they tell of.
        in_transaction=[outbox.write],
    )
    pipeline = Pipeline(
        res.engine,
        tickets,
        res.devices,
        res.db,
        res.dispatcher,
        res.state_db,
        record=record,
        set_aside=set_aside,
        alarm_client=res.alarm_client,
        unapplied=res.unapplied,
        state_id=engine_state_id(settings),
    )
    escalation = Escalation(
        res.scheduler,
        tickets,
        res.dispatcher,
        res.timer_jobs,
        settings.renotify_s,
        settings.escalate_emergency_s,
        settings.escalate_major_s,
        sites=settings.sites,
    )
    # Overdue marks and faults that persist past their ticket's resolution.
    deadlines = Deadlines(
        res.scheduler,
        tickets,
        res.dispatcher,
        res.timer_jobs,
        settings.reopen_cooldown_s,
        sites=settings.sites,
    )
    patrol = PatrolService(
        res.db,
        tickets,
        pipeline.submit,
        Timing(
            tolerance_s=settings.patrol_tolerance_s,
            grace_s=settings.patrol_grace_s,
            start_grace_s=settings.patrol_start_grace_s,
        ),
        ZoneInfo(settings.timezone),
        record=record,
        sites=settings.sites,
    )
    # An alarm's ticket opened asks the rounds walking its place now to look (a verify stop).
    tickets.listeners.append(patrol.on_ticket_change)
    maintenance = MaintenanceService(res.db, tickets, zone=ZoneInfo(settings.timezone), sites=settings.sites)
    # Each work order done becomes a point for the on-plan panel.
    tickets.listeners.append(WorkOrderRecorder(res.db, record, ZoneInfo(settings.timezone)))
    collector = Collector(
        settings,
        res.store,
        handlers=[pipeline.handle, patrol.handle, maintenance.handle],
        lock_data_dir=False,
    )
    status = StatusWriter(
        res.devices,
        tickets,
        pipeline.take_readings,
        functools.partial(counters, collector, pipeline),
        collector.add_lines,
        sites=settings.sites,
    )
    record.bind(collector.add_lines)
    set_aside.bind(collector.add_dead_letters)
    to_escalation.bind(escalation.on_change)
    to_deadlines.bind(deadlines.on_change)
    to_pipeline.bind(pipeline.on_ticket_change)
    return Parts(
        tickets, pipeline, escalation, patrol, maintenance, collector, status, outbox, courier, deadlines
    )


def counters(collector: Collector, pipeline: Pipeline) -> dict[str, float]:
    """The collector's and the pipeline's counters, for /health, /metrics and the status points."""
    return {
        "mqtt_connected": float(collector.connected.is_set()),
        "messages_received_total": collector.received,
        "messages_accepted_total": collector.accepted,
        "dead_letters_total": collector.dead_letters,
        "duplicates_total": collector.tracker.duplicates,
        "readings_lost_total": collector.tracker.lost,
        "readings_stored_total": collector.writer.stored,
        "store_up": float(collector.writer.store_up),
        "alarm_events_total": pipeline.alarm_events,
    }
