"""Deadline timers on the real service: lost ones come back at start-up and fire through APScheduler."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from facility.service import Service
from ground.events import AlarmEvent
from ground.severity import Severity
from records.db import Database, database_url, migrate
from records.models import Ticket
from tests.conftest import ADMIN_TOKEN, make_settings, wait_until
from tests.servers import Mosquitto
from tickets.lifecycle import Action
from tickets.service import ActionFields, TicketService

pytestmark = pytest.mark.services


def _raise(tickets: TicketService, device_id: str, rule: str) -> int:
    event = AlarmEvent(
        kind="raised",
        site="s1",
        device_type="water_pump",
        device_id=device_id,
        rule=rule,
        severity=Severity.ROUTINE,
        ts=int(time.time() * 1000),
        title="x",
        detail={},
    )
    ticket_id = tickets.apply_alarm(event)
    assert ticket_id is not None
    return ticket_id


def test_a_late_routine_ticket_and_a_persisting_fault_are_dealt_with_after_a_restart(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    settings = make_settings(tmp_path, mqtt_url=mosquitto.url, admin_token=ADMIN_TOKEN, reopen_cooldown_s=60)
    # What a process killed before writing the timers leaves: tickets in the records, no jobs.
    records = Database(database_url(None, settings.data_dir))
    migrate(records.engine)
    before = TicketService(records, reopen_cooldown_s=60)
    late = _raise(before, "pump-1", "water_pump_fault")
    persisting = _raise(before, "pump-2", "water_pump_fault")
    for action, fields in (
        (Action.ACKNOWLEDGE, ActionFields()),
        (Action.START, ActionFields()),
        (Action.RESOLVE, ActionFields(cause="c", measures="m", result="r")),
    ):
        before.act(persisting, action, fields, "eng")
    with records.session() as s:
        s.get(Ticket, late).response_due = datetime.now(UTC) - timedelta(minutes=1)  # type: ignore[union-attr]
        s.get(Ticket, persisting).resolved_at = datetime.now(UTC) - timedelta(minutes=2)  # type: ignore[union-attr]
    records.close()

    service = Service(settings)
    service.start()
    try:
        wait_until(
            lambda: service.tickets.get(late).response_overdue_at is not None, timeout_s=15, what="overdue"
        )
        wait_until(
            lambda: service.tickets.get(persisting).status == "open",
            timeout_s=15,
            what="the fault's reopening",
        )
        assert service.tickets.get(persisting).audit[-1].detail["reason"] == "condition still holds"
        assert [a.action for a in service.tickets.get(late).audit].count("overdue") == 1
        assert service.timer_jobs.drain()  # the reopened ticket's own timers are set
        assert service.deadlines.repair() == 0, "nothing left to repair"
    finally:
        service.stop()
