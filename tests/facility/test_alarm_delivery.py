"""No single alarm event holds up the others: refused ones are set aside, waiting ones survive a restart."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest

from collector.inbox import DeadLetter, Inbox
from collector.lineprotocol import Point
from facility.pipeline import Pipeline, create_state_tables, load_engine_state
from facility.service import Service
from ground.events import AlarmEvent
from ground.severity import Severity
from records.db import Database, migrate, sqlite_file_url
from records.devices import DeviceDirectory
from rules.catalogue import default_rules_path, load_rules
from rules.engine import Engine
from tests.conftest import ADMIN_TOKEN, Publisher, make_settings, wait_until
from tests.servers import Mosquitto, free_port
from tickets.notify import Dispatcher
from tickets.service import TicketFilter, TicketService

pytestmark = pytest.mark.services


def _event(device_id: str, rule: str, detail: dict[str, object]) -> AlarmEvent:
    return AlarmEvent(
        kind="raised",
        site="s1",
        device_type="chiller",
        device_id=device_id,
        rule=rule,
        severity=Severity.MAJOR,
        ts=int(time.time() * 1000),
        title=rule,
        detail=detail,
    )


def test_an_event_the_records_refuse_is_set_aside_and_the_fire_alarm_behind_it_opens_its_ticket(
    tmp_path: Path, mosquitto: Mosquitto, db_url: str
) -> None:
    """The probe's case on SQLite and PostgreSQL: a NaN in a detail, then a fire alarm and a flooding sump."""
    settings = make_settings(tmp_path, mqtt_url=mosquitto.url, admin_token=ADMIN_TOKEN, database_url=db_url)
    service = Service(settings)
    service.start()
    publisher = Publisher(mosquitto.url, "refused-alarm-publisher")
    try:
        assert service.wait_ready(15)
        # An event no database takes: a NaN in its detail (JSON allows it, PostgreSQL does not).
        service.pipeline.submit([_event("chiller-9", "chiller_trip", {"supply_temp_c": math.nan})])
        now = int(time.time() * 1000)
        publisher.publish_all(
            [
                (
                    "facility/v1/s1/fire_panel/fp-1/event",
                    # A NaN in a device's own detail is normalised at decoding: the alarm stands.
                    b'{"ts": %d, "seq": 1, "code": "FIRE_ALARM", "state": "raised",'
                    b' "detail": {"zone": "3F", "component": "smoke-1", "obscuration_pct": NaN}}' % now,
                ),
                (
                    "facility/v1/s1/sump_pit/sump-1/telemetry",
                    {"ts": now, "seq": 1, "metrics": {"level_pct": 99}},
                ),
            ]
        )
        wait_until(
            lambda: {"fire_alarm", "sump_flooding"} <= {a.rule for a in service.tickets.alarms(False)},
            what="the fire alarm's and the sump's alarms behind the refused event",
        )
        tickets = service.tickets.list(TicketFilter(limit=100))
        assert {t.device_id for t in tickets} == {"fp-1", "sump-1"}, "no ticket for the refused event"
        fire = next(a for a in service.tickets.alarms(False) if a.rule == "fire_alarm")
        assert fire.detail["detail"]["obscuration_pct"] is None and fire.ticket_id is not None

        def alarm_letters() -> list[dict[str, object]]:
            inbox = Inbox(settings.inbox_path)
            try:
                return [d for d in inbox.dead_letters() if d["stage"] == "alarm"]
            finally:
                inbox.close()

        wait_until(lambda: bool(alarm_letters()), what="the refused event as a dead letter")
        (letter,) = alarm_letters()
        assert letter["topic"] == "s1/chiller/chiller-9/chiller_trip"
        assert "refused" in str(letter["reason"]) and "chiller_trip" in str(letter["payload"])
        assert service.counters()["dead_letters_total"] >= 1
        assert service.pipeline.refused == 1
    finally:
        publisher.close()
        service.stop()


def test_events_waiting_for_an_unreachable_database_survive_a_restart(tmp_path: Path) -> None:
    """Events the records could not take yet go into the engine's snapshot and are applied after it."""
    catalogue = load_rules(default_rules_path())
    state_db = Database(sqlite_file_url(tmp_path, "engine-state.db"))
    create_state_tables(state_db.engine)
    down = Database(f"postgresql://facility@127.0.0.1:{free_port()}/facility")  # nothing listens there
    dispatcher = Dispatcher([])
    points: list[Point] = []
    refused: list[DeadLetter] = []
    first = Pipeline(
        Engine(catalogue),
        TicketService(down),
        DeviceDirectory(down),
        down,
        dispatcher,
        state_db,
        record=points.extend,
        set_aside=refused.extend,
    )
    waiting = [_event("chiller-1", "chiller_trip", {}), _event("chiller-2", "chiller_trip", {})]
    first.submit(waiting)
    first.save_if_changed()
    saved = load_engine_state(state_db)
    assert saved is not None and len(saved["unapplied"]) == 2

    records = Database(sqlite_file_url(tmp_path, "records.db"))
    migrate(records.engine)
    tickets = TicketService(records)
    second = Pipeline(
        Engine(catalogue, saved),
        tickets,
        DeviceDirectory(records),
        records,
        dispatcher,
        state_db,
        record=points.extend,
        set_aside=refused.extend,
        unapplied=saved["unapplied"],
    )
    second.tick()
    assert {t.device_id for t in tickets.list(TicketFilter())} == {"chiller-1", "chiller-2"}
    second.save_if_changed()
    assert (load_engine_state(state_db) or {})["unapplied"] == []
    dispatcher.stop()
    for database in (down, records, state_db):
        database.close()
