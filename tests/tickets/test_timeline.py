"""What the service records in the time-series store: alarms, ticket changes and site counts."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from collector.lineprotocol import parse_line
from collector.stores.sqlite import SqliteStore
from facility.service import Service
from ground.events import AlarmEvent
from ground.severity import Severity
from patrol.timeline import patrol_checkpoint_point, patrol_round_point
from tests.conftest import ADMIN_TOKEN, Publisher, make_settings, wait_until
from tests.servers import Mosquitto
from tickets.lifecycle import Action
from tickets.service import ActionFields, ChangeKind, TicketChange, TicketFilter
from tickets.timeline import alarm_point, service_status_point, site_status_point, ticket_point

T0 = 1_795_749_124_000
OPENED = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)


def test_every_point_parses_with_its_tags_and_typed_fields() -> None:
    event = AlarmEvent(
        kind="raised",
        site="s1",
        device_type="sump_pit",
        device_id="sump-1",
        rule="sump_flooding",
        severity=Severity.EMERGENCY,
        ts=T0,
        title='Sump "B2"',
        detail={},
    )
    alarm = parse_line(alarm_point(event, 7)[0])
    assert alarm.measurement == "alarms" and alarm.time == T0
    assert alarm.tags == {
        "site": "s1",
        "device_id": "sump-1",
        "device_type": "sump_pit",
        "rule": "sump_flooding",
        "class": "emergency",
    }
    assert alarm.fields == {"state": "raised", "title": 'Sump "B2"', "ticket_id": 7}

    acknowledged = TicketChange(
        ticket_id=7,
        kind=ChangeKind.ACKNOWLEDGED,
        severity=Severity.MAJOR,
        site="s1",
        device_id=None,
        title="t",
        source="alarm",
        opened_at=OPENED,
        acknowledged_at=OPENED + timedelta(minutes=12),
    )
    line, ts = ticket_point(acknowledged, OPENED + timedelta(minutes=12))
    ticket = parse_line(line)
    assert ticket.tags == {
        "site": "s1",
        "class": "major",
        "source": "alarm",
        "device_type": "none",
        "change": "acknowledged",
        "ticket": "7",
    }
    assert (
        ticket.fields["seconds_to_acknowledge"] == 720.0 and ticket.fields["target_acknowledge_s"] == 1800.0
    )
    assert ticket.fields["ticket_id"] == 7 and ticket.fields["device_id"] == ""
    assert ts == int((OPENED + timedelta(minutes=12)).timestamp() * 1000)

    resolved = TicketChange(
        ticket_id=7,
        kind=ChangeKind.RESOLVED,
        severity=Severity.MAJOR,
        site="s1",
        device_id="d",
        title="t",
        source="alarm",
        opened_at=OPENED,
        resolved_at=OPENED + timedelta(hours=2),
        device_type="water_pump",
    )
    fields = parse_line(ticket_point(resolved, OPENED)[0])
    assert fields.tags["change"] == "resolved" and fields.fields["seconds_to_resolve"] == 7200.0
    assert fields.tags["device_type"] == "water_pump"
    assert fields.fields["target_resolve_s"] == Severity.MAJOR.resolve_due_s

    status = parse_line(site_status_point("s1", {"devices": 3.0}, T0)[0])
    assert (
        status.measurement == "site_status"
        and status.tags == {"site": "s1"}
        and status.fields == {"devices": 3.0}
    )
    service = parse_line(service_status_point({"dead_letters_total": 2.0}, T0)[0])
    assert service.tags == {} and service.fields == {"dead_letters_total": 2.0}

    round_ = parse_line(
        patrol_round_point("s1", "r-night", "g-1", "incomplete", 3, {"missed": 1, "on_time": 4}, OPENED)[0]
    )
    assert round_.tags == {"site": "s1", "route": "r-night", "guard": "g-1"}
    assert round_.fields == {
        "status": "incomplete",
        "completed": 0.0,
        "missed": 1.0,
        "on_time": 4.0,
        "round_id": 3,
    }
    checkpoint = parse_line(
        patrol_checkpoint_point("s1", "r-night", "g-1", "cp-1", "late", 3, 420.0, OPENED)[0]
    )
    assert checkpoint.tags["checkpoint"] == "cp-1" and "status" not in checkpoint.tags
    assert checkpoint.fields == {"status": "late", "missed": 0.0, "offset_s": 420.0, "round_id": 3}


def _points(store: SqliteStore, measurement: str, field: str, site: str | None = None) -> list[Any]:
    now = int(time.time() * 1000)
    return [v for _t, v in store.query(measurement, field, 0, now + 3_600_000, site=site)]


@pytest.mark.services
def test_the_service_records_alarms_ticket_changes_and_site_counts(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    service = Service(
        make_settings(tmp_path, mqtt_url=mosquitto.url, admin_token=ADMIN_TOKEN, status_interval_s=0.3)
    )
    service.start()
    publisher = Publisher(mosquitto.url, client_id="timeline-publisher")
    try:
        assert service.wait_ready(15)
        store = service.store
        assert isinstance(store, SqliteStore)
        sump = "facility/v1/s1/sump_pit/sump-1/telemetry"
        publisher.publish_all(
            [
                (sump, {"ts": T0, "seq": 0, "metrics": {"level_pct": 97.0, "pump_running": True}}),
                (sump, {"ts": T0 + 1000, "seq": 1, "metrics": {"level_pct": 97.5, "pump_running": True}}),
            ]
        )
        wait_until(lambda: len(service.tickets.list(TicketFilter())) == 1, what="the flooding ticket")
        [ticket] = service.tickets.list(TicketFilter())
        service.tickets.act(ticket.id, Action.ACKNOWLEDGE, ActionFields(), "eng")

        wait_until(lambda: "raised" in _points(store, "alarms", "state", "s1"), what="the alarm point")
        wait_until(
            lambda: bool(_points(store, "tickets", "seconds_to_acknowledge", "s1")),
            what="the acknowledgement",
        )
        assert ticket.id in _points(store, "tickets", "ticket_id", "s1")
        wait_until(lambda: 1.0 in _points(store, "site_status", "alarms_emergency", "s1"), what="site counts")
        assert 1.0 in _points(store, "site_status", "tickets_open", "s1")
        # The device directory reaches the database every few seconds.
        wait_until(lambda: 1.0 in _points(store, "site_status", "devices_online", "s1"), what="device counts")
        assert sum(_points(store, "site_status", "readings", "s1")) == 2.0
        wait_until(
            lambda: bool(_points(store, "service_status", "messages_received_total")), what="service counters"
        )
    finally:
        publisher.close()
        service.stop()
