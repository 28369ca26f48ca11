"""Tickets whose timers were lost (killed between the ticket and its timers, a full disk) get them back."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from facility.service import Service
from ground.events import AlarmEvent
from ground.severity import Severity
from records.db import Database, database_url, migrate
from tests.conftest import ADMIN_TOKEN, make_settings, wait_until
from tests.servers import Mosquitto
from tickets.lifecycle import Action
from tickets.service import ActionFields, TicketService

pytestmark = pytest.mark.services


def _raise(tickets: TicketService, device_id: str, severity: Severity) -> int:
    event = AlarmEvent(
        kind="raised",
        site="s1",
        device_type="elevator",
        device_id=device_id,
        rule=f"rule_{severity}",
        severity=severity,
        ts=int(time.time() * 1000),
        title="x",
        detail={},
    )
    ticket_id = tickets.apply_alarm(event)
    assert ticket_id is not None
    return ticket_id


def test_open_unacknowledged_major_and_emergency_tickets_get_their_timers_back_at_start_up(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    settings = make_settings(
        tmp_path,
        mqtt_url=mosquitto.url,
        admin_token=ADMIN_TOKEN,
        renotify_s=1,
        escalate_emergency_s=900,
        escalate_major_s=1800,
    )
    # What a process killed after committing the tickets and before their timers leaves behind:
    # tickets in the records, no jobs.
    records = Database(database_url(None, settings.data_dir))
    migrate(records.engine)
    before = TicketService(records)
    emergency = _raise(before, "elev-1", Severity.EMERGENCY)
    major = _raise(before, "elev-2", Severity.MAJOR)
    routine = _raise(before, "elev-3", Severity.ROUTINE)
    acknowledged = _raise(before, "elev-4", Severity.EMERGENCY)
    before.act(acknowledged, Action.ACKNOWLEDGE, ActionFields(), "eng")
    escalated = _raise(before, "elev-5", Severity.MAJOR)
    assert before.escalate(escalated) is not None
    records.close()
    opened = datetime.now(UTC)

    service = Service(settings)
    service.start()
    try:
        jobs = {job.id: job for job in service.scheduler.get_jobs()}
        assert {f"renotify-{emergency}", f"escalate-{emergency}", f"escalate-{major}"} <= set(jobs)
        for ticket_id in (routine, acknowledged, escalated):
            assert not {f"renotify-{ticket_id}", f"escalate-{ticket_id}"} & set(jobs), ticket_id
        # Escalation stays due when it was due, counted from the ticket's opening, not from the restart.
        due = jobs[f"escalate-{major}"].next_run_time
        assert abs(due - (opened + timedelta(seconds=1800))) < timedelta(seconds=30)
        # And the repaired re-notification fires.
        wait_until(
            lambda: service.tickets.get(emergency).notified_count >= 1, timeout_s=15, what="a re-notification"
        )

        # A timer dropped while running (the job store refused it) comes back with the next check.
        service.scheduler.remove_job(f"escalate-{major}")
        service._repair_timers()
        assert service.scheduler.get_job(f"escalate-{major}") is not None
        assert service.escalation.repair() == 0, "nothing left to repair"
    finally:
        service.stop()
