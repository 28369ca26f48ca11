"""The pipeline on its own: decoded messages in, alarms, tickets, points and dead letters out; no broker."""

from __future__ import annotations

import math

from collector.lineprotocol import parse_line
from ground.clock import now_ms
from ground.events import AlarmEvent
from ground.severity import Severity
from tests.conftest import FedPipeline
from tickets.service import TicketFilter

CHILLER = "facility/v1/s1/chiller/chiller-1/telemetry"


def test_a_fault_opens_a_ticket(pipeline: FedPipeline) -> None:
    pipeline.deliver(CHILLER, {"ts": now_ms(), "seq": 0, "metrics": {"tripped": True}})
    [ticket] = pipeline.tickets.list(TicketFilter())
    assert (ticket.device_id, ticket.rule, ticket.severity, ticket.status) == (
        "chiller-1",
        "chiller_trip",
        "major",
        "open",
    )
    [alarm] = pipeline.tickets.alarms(active_only=True)
    assert alarm.ticket_id == ticket.id and pipeline.pipeline.alarm_events == 1


def test_a_clear_clears_the_alarm(pipeline: FedPipeline) -> None:
    t0 = now_ms()
    pipeline.deliver(CHILLER, {"ts": t0, "seq": 0, "metrics": {"tripped": True}})
    pipeline.deliver(CHILLER, {"ts": t0 + 1000, "seq": 1, "metrics": {"tripped": False}})
    assert pipeline.tickets.alarms(active_only=True) == []
    [alarm] = pipeline.tickets.alarms(active_only=False)
    assert alarm.rule == "chiller_trip" and alarm.cleared_at is not None
    [ticket] = pipeline.tickets.list(TicketFilter())
    assert ticket.status == "open", "a cleared alarm leaves its ticket to people"


def test_an_event_the_records_refuse_is_set_aside_and_the_next_goes_on(pipeline: FedPipeline) -> None:
    # A NaN in the detail: the records' JSON columns refuse it on SQLite and PostgreSQL alike.
    refused = AlarmEvent(
        kind="raised",
        site="s1",
        device_type="chiller",
        device_id="chiller-9",
        rule="chiller_trip",
        severity=Severity.MAJOR,
        ts=now_ms(),
        title="trip",
        detail={"t": math.nan},
    )
    pipeline.pipeline.submit([refused])
    [letter] = pipeline.set_aside
    assert letter.stage == "alarm" and letter.topic == "s1/chiller/chiller-9/chiller_trip"
    assert "refused" in letter.reason and pipeline.pipeline.refused == 1
    pipeline.deliver(CHILLER, {"ts": now_ms(), "seq": 0, "metrics": {"tripped": True}})
    assert [t.device_id for t in pipeline.tickets.list(TicketFilter())] == ["chiller-1"]


def test_alarms_and_ticket_changes_go_to_the_sink_as_points(pipeline: FedPipeline) -> None:
    t0 = now_ms()
    pipeline.deliver(CHILLER, {"ts": t0, "seq": 0, "metrics": {"tripped": True}})
    [raised] = [parse_line(line) for line in pipeline.measurements("alarms")]
    assert raised.time == t0 and raised.tags["rule"] == "chiller_trip"
    assert raised.fields["state"] == "raised" and raised.fields["ticket_id"] == 1
    [opened] = [parse_line(line) for line in pipeline.measurements("tickets")]
    assert opened.tags["change"] == "opened" and opened.tags["class"] == "major"
    pipeline.deliver(CHILLER, {"ts": t0 + 1000, "seq": 1, "metrics": {"tripped": False}})
    states = [parse_line(line).fields["state"] for line in pipeline.measurements("alarms")]
    assert states == ["raised", "cleared"]
