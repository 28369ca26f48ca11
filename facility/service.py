"""One process for a site: collector, rules engine, tickets, timers and the API, wired together."""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from fastapi import FastAPI
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy.engine import Engine as SqlEngine

import console.app as console
from api.app import ServiceContext, create_app
from api.auth import TokenBook
from collector.stores.factory import open_store
from facility.pipeline import create_state_tables, load_engine_state, move_engine_state
from facility.resolutions import Resolutions
from facility.wiring import Resources, counters, wire
from facility.worker import drop_foreign_timers, engine_state_id, timers_table
from ground.datalock import DataDirLock
from ground.settings import Settings
from maintenance import windows as maintenance_windows
from records.db import Database, database_url, make_engine, migrate_apart, sqlite_file_url
from records.devices import DeviceDirectory
from records.models import Device
from rules.catalogue import Catalogue, default_rules_path, load_rules
from rules.engine import Engine
from tickets import deadlines, escalation
from tickets.changes import TicketChange
from tickets.notify import Dispatcher, LogNotifier
from tickets.recipientsfile import RecipientsFile

log = logging.getLogger(__name__)

TICK_S = 1.0
TIMER_REPAIR_S = 300
MAINTENANCE_S = 60
# How soon after a maintenance window ends what it held and still holds opens its ticket.
WINDOWS_S = 30.0
# How soon a worker hears that one of its sites' tickets was resolved through another worker.
RESOLUTIONS_S = 2.0


class Service:
    """Everything `facility serve` runs, built from settings; start() and stop() it around the API."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # First of all: a second service on this folder must not touch anything in it.
        self.data_lock = DataDirLock(settings.data_dir)
        try:
            self._build(settings)
        except BaseException:
            self.data_lock.release()
            raise

    def _build(self, settings: Settings) -> None:
        self.db = Database(database_url(settings.database_url, settings.data_dir))
        migrate_apart(self.db.engine)
        self.store = open_store(settings)
        self.catalogue: Catalogue = load_rules(settings.rules_file or default_rules_path())
        self.state_db = self._state_db()
        state = load_engine_state(self.state_db, engine_state_id(settings))
        self.engine = Engine(self.catalogue, state)
        self.devices = DeviceDirectory(self.db)
        # People are told through the outbox; the log keeps a line of each notification.
        self.dispatcher = Dispatcher([LogNotifier()])
        self.recipients = RecipientsFile(settings.recipients_file or settings.data_dir / "recipients.yaml")
        self.alarm_client = self._alarm_client() if settings.publish_alarms else None
        self.scheduler = BackgroundScheduler(
            jobstores={
                # A worker of several keeps its timers in a table of its own (facility/worker.py).
                "default": SQLAlchemyJobStore(engine=self._jobs_engine(), tablename=timers_table(settings)),
                "memory": MemoryJobStore(),
            },
            timezone=UTC,
        )
        self.timer_jobs = Dispatcher([], name="timers", maxsize=0)
        parts = wire(
            settings,
            Resources(
                db=self.db,
                store=self.store,
                engine=self.engine,
                devices=self.devices,
                state_db=self.state_db,
                unapplied=(state or {}).get("unapplied", ()),
                dispatcher=self.dispatcher,
                timer_jobs=self.timer_jobs,
                scheduler=self.scheduler,
                alarm_client=self.alarm_client,
                recipients=self.recipients.book,
            ),
        )
        self.tickets = parts.tickets
        self.pipeline = parts.pipeline
        self.escalation = parts.escalation
        self.deadlines = parts.deadlines
        self.patrol = parts.patrol
        self.maintenance = parts.maintenance
        self.collector = parts.collector
        self.status = parts.status
        self.outbox = parts.outbox
        self.courier = parts.courier
        # Alarms of devices under a maintenance window are held; a started work order opens one.
        self.windows = maintenance_windows.attach(self.tickets)
        self._stop = threading.Event()
        self._collector_thread = threading.Thread(
            target=self.collector.run, args=(self._stop,), name="collector"
        )
        if settings.inventory_file:
            for device in self.devices.load_inventory(settings.inventory_file):
                self.register(device)
        self.tokens = TokenBook(self.db, settings.admin_token)
        # A worker of several hears of its sites' tickets resolved through another worker's API.
        self.resolutions = (
            Resolutions(self.db, settings.sites, self._resolved_elsewhere) if settings.sites else None
        )

    def _resolved_elsewhere(self, change: TicketChange) -> None:
        """A resolve heard from the records: the engine's latched alarms cleared, the timers set again."""
        self.pipeline.on_ticket_change(change)
        self.escalation.on_change(change)
        self.deadlines.on_change(change)

    def _jobs_engine(self) -> SqlEngine:
        """Where the timers persist: the records database, or with SQLite a file of their own.

        SQLite has one writer per file; the timers' writes would make ticket writes wait.
        """
        if self.db.engine.dialect.name != "sqlite":
            return self.db.engine
        return make_engine(sqlite_file_url(self.settings.data_dir, "timers.db"))

    def _state_db(self) -> Database:
        """Where the engine's snapshot is kept: the records database, or with SQLite a file of its own.

        The snapshot grows with the fleet (about 300 kB for a thousand elevators) and is written
        every few seconds; in the records' file, each write would make a ticket wait for it.
        """
        if self.db.engine.dialect.name != "sqlite":
            return self.db
        state_db = Database(sqlite_file_url(self.settings.data_dir, "engine-state.db"))
        create_state_tables(state_db.engine)
        move_engine_state(self.db, state_db)
        return state_db

    def _alarm_client(self) -> mqtt.Client:
        endpoint = self.settings.mqtt
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{self.settings.mqtt_client_id}-alarms")
        if endpoint.username:
            client.username_pw_set(endpoint.username, endpoint.password)
        endpoint.secure(client)
        client.connect_async(endpoint.host, endpoint.port, keepalive=30)
        return client

    def register(self, device: Device) -> None:
        """Tell the engine of a device registered ahead, so it is flagged offline if it never reports."""
        self.pipeline.register(device)

    def app(self) -> FastAPI:
        """The API over this service."""
        ctx = ServiceContext(
            settings=self.settings,
            db=self.db,
            tickets=self.tickets,
            devices=self.devices,
            store=self.store,
            tokens=self.tokens,
            counters=self.counters,
            on_register=self.register,
            patrol=self.patrol,
            maintenance=self.maintenance,
            outbox=self.outbox,
            recipients=self.recipients,
        )
        app = create_app(ctx)
        console.mount(app, self.db)
        return app

    def counters(self) -> dict[str, float]:
        """The pipeline's and the courier's counters, for /health and /metrics."""
        return {**counters(self.collector, self.pipeline), **self.courier.counters()}

    def start(self) -> None:
        """Start the timers, the alarm publisher and the collector; refused while another one runs here."""
        escalation.activate(self.escalation)  # first: a refused start leaves nothing running
        try:
            deadlines.activate(self.deadlines)
        except RuntimeError:
            escalation.deactivate(self.escalation)
            raise
        self._every(TICK_S, self.pipeline.tick, "rules-tick")
        self._every(self.settings.status_interval_s, self.status.write, "site-status")
        # Patrol deadlines: each round keeps its next one, so a restart loses none.
        self._every(TICK_S, self.patrol.sweep, "patrol-deadlines")
        self._every(WINDOWS_S, self._release_windows, "maintenance-windows")
        if self.resolutions is not None:
            self._every(RESOLUTIONS_S, self.resolutions.poll, "resolutions", next_run_time=datetime.now(UTC))
        self._every(600, self.patrol.schedule_plans, "patrol-plans", next_run_time=datetime.now(UTC))
        # Calendar work orders whose open time has come (and the use index, for devices seen since).
        self._every(
            MAINTENANCE_S, self.maintenance.open_due, "maintenance-due", next_run_time=datetime.now(UTC)
        )
        self._every(
            86_400, self.maintenance.check_licences, "licence-expiry", next_run_time=datetime.now(UTC)
        )
        self.scheduler.start()
        if self.settings.sites is not None:
            drop_foreign_timers(self.scheduler, self.db, self.settings.sites)
        # Tickets whose timers were lost (killed between the ticket and its timers, a full disk) get
        # them back now, and every few minutes after.
        self._repair_timers()
        self._every(TIMER_REPAIR_S, self._repair_timers, "timer-repair")
        if self.alarm_client is not None:
            self.alarm_client.loop_start()
        self.courier.start()
        self._collector_thread.start()

    def _repair_timers(self) -> None:
        try:
            self.escalation.repair()
            self.deadlines.repair()
        except Exception:
            log.exception("could not check the tickets' timers; trying again in %d s", TIMER_REPAIR_S)

    def _release_windows(self) -> None:
        """Timer: windows that ended release what they held and still holds."""
        self.windows.release_ended(self.tickets)

    def _every(self, seconds: float, job: Callable[[], object], job_id: str, **options: Any) -> None:
        """A repeating job kept in memory: it is rebuilt at every start, so nothing to persist."""
        self.scheduler.add_job(
            job,
            "interval",
            seconds=seconds,
            id=job_id,
            jobstore="memory",
            max_instances=1,
            coalesce=True,
            replace_existing=True,
            **options,
        )

    def wait_ready(self, timeout_s: float = 30.0) -> bool:
        """Wait until the collector has subscribed."""
        return self.collector.connected.wait(timeout_s)

    def stop(self) -> None:
        """Stop the collector, the timers and the notifiers; keep the engine's state."""
        self._stop.set()
        if self._collector_thread.ident is not None:  # a refused start never started it
            self._collector_thread.join(30)
        self.timer_jobs.stop()  # timers still being scheduled reach the job store first
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        self.pipeline.devices.flush()
        self.pipeline.save_if_changed()
        self.dispatcher.stop()
        self.courier.stop()  # what it has not sent stays in the outbox for the next start
        if self.alarm_client is not None:
            self.alarm_client.disconnect()
            self.alarm_client.loop_stop()
        escalation.deactivate(self.escalation)
        deadlines.deactivate(self.deadlines)
        self.store.close()
        if self.state_db is not self.db:
            self.state_db.close()
        self.db.close()
        self.data_lock.release()


def settle_heap(server: Any, api: threading.Thread) -> None:
    """Once the API is up, move everything built at start-up out of the garbage collector's sight.

    A full collection walks every object; with the modules and the app counted it took 70-90 ms,
    a pause that every message and request in flight waits out. Frozen, it walks only what came
    after.
    """
    while not server.started and api.is_alive():
        time.sleep(0.05)
    gc.collect()
    gc.freeze()


def run(settings: Settings, host: str, port: int) -> None:
    """`facility serve`: the service and its API until SIGINT or SIGTERM, then a clean stop."""
    import uvicorn

    from collector.app import stop_on_signals

    # Signals stay with this thread: uvicorn re-raises a signal it caught once it has shut down,
    # which would end the process before the service saves its state.
    stop = stop_on_signals()
    service = Service(settings)
    service.start()
    server = uvicorn.Server(
        uvicorn.Config(
            service.app(),
            host=host,
            port=port,
            log_level=settings.log_level.lower(),
            # The console's live streams stay open; a stop waits this long for them, no longer.
            timeout_graceful_shutdown=3,
            # Nothing here speaks WebSocket (the console's live streams are server-sent events), so
            # the websockets library is not loaded for it: 0.7 MB.
            ws="none",
        )
    )
    api = threading.Thread(target=server.run, name="api")
    api.start()
    log.info("API on http://%s:%d/api/v1 (OpenAPI at /docs)", host, port)
    settle_heap(server, api)
    try:
        while not stop.wait(1.0):
            if not api.is_alive():
                raise SystemExit(f"the API stopped (is port {port} taken?)")
    finally:
        server.should_exit = True
        api.join(15)
        service.stop()
