"""Maintenance windows hold the alarms of the work, never life safety, and release what still holds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from maintenance.windows import Covered, WindowBook, attach
from records.models import Alarm, WorkOrder
from tests.conftest import FedPipeline
from tickets.lifecycle import Action, Source
from tickets.service import ActionFields, NewTicket, TicketFilter

LIGHTS = "facility/v1/s1/lighting_circuit/lc-1/telemetry"
LIFT = "facility/v1/s1/elevator/elev-1/telemetry"


def _ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def _lamps(fed: FedPipeline, t: datetime, seq: int, failures: float) -> None:
    metrics = {"on": True, "breaker_tripped": False, "power_w": 800.0, "lamp_failures": failures}
    fed.deliver(LIGHTS, {"ts": _ms(t), "seq": seq, "metrics": metrics})


def _lift(fed: FedPipeline, t: datetime, seq: int, *, trapped: bool) -> None:
    metrics = {
        "floor": 7.0,
        "moving": False,
        "speed_mps": 0.0,
        "door": "closed",
        "in_door_zone": not trapped,
        "occupied": trapped,
        "service_mode": "normal",
        "run_count": 1000.0,
    }
    fed.deliver(LIFT, {"ts": _ms(t), "seq": seq, "metrics": metrics})


def _lamp_failure(fed: FedPipeline, now: datetime, seq: int = 1) -> None:
    """A lamp failing for 6 minutes, ending 4 minutes ago: the `lamp_failure` rule raises."""
    t0 = now - timedelta(minutes=10)
    _lamps(fed, t0, seq, 1.0)
    _lamps(fed, t0 + timedelta(minutes=6), seq + 1, 1.0)


def _alarms(fed: FedPipeline) -> dict[str, Alarm]:
    with fed.tickets.db.read() as s:
        return {a.rule: a for a in s.scalars(select(Alarm))}


def _window(book: WindowBook, start: datetime, end: datetime, *devices: str) -> int:
    return book.add(Covered("s1", devices), start, end, "relamping", "eng").id


def test_a_window_holds_a_lamp_failure_and_not_an_entrapment(pipeline: FedPipeline) -> None:
    book = attach(pipeline.tickets)
    now = datetime.now(UTC)
    _window(book, now - timedelta(hours=1), now + timedelta(hours=1), "lc-1", "elev-1")
    t0 = now - timedelta(minutes=10)
    _lamps(pipeline, t0, 1, 2.0)
    _lamps(pipeline, t0 + timedelta(minutes=6), 2, 2.0)
    for i in range(3):
        _lift(pipeline, t0 + timedelta(seconds=10 * i), 10 + i, trapped=True)
    alarms = _alarms(pipeline)
    assert alarms["lamp_failure"].held and alarms["lamp_failure"].ticket_id is None
    assert not alarms["entrapment"].held and alarms["entrapment"].ticket_id is not None
    opened = pipeline.tickets.list(TicketFilter())
    assert [t.rule for t in opened] == ["entrapment"]


def test_a_condition_still_holding_when_the_window_ends_opens_its_ticket(pipeline: FedPipeline) -> None:
    book = attach(pipeline.tickets)
    now = datetime.now(UTC)
    window = _window(book, now - timedelta(hours=1), now + timedelta(hours=1), "lc-1")
    _lamp_failure(pipeline, now)
    assert _alarms(pipeline)["lamp_failure"].held
    assert book.release_ended(pipeline.tickets) == 0, "the window has not ended"
    book.end_now(window)
    assert book.release_ended(pipeline.tickets) == 1
    [ticket] = pipeline.tickets.list(TicketFilter())
    assert ticket.rule == "lamp_failure" and ticket.source is Source.ALARM
    alarm = _alarms(pipeline)["lamp_failure"]
    assert not alarm.held and alarm.ticket_id == ticket.id
    assert book.release_ended(pipeline.tickets) == 0, "released once"


def test_an_alarm_that_cleared_inside_the_window_opens_nothing(pipeline: FedPipeline) -> None:
    book = attach(pipeline.tickets)
    now = datetime.now(UTC)
    window = _window(book, now - timedelta(hours=1), now + timedelta(hours=1), "lc-1")
    _lamp_failure(pipeline, now)
    _lamps(pipeline, now - timedelta(minutes=3), 3, 0.0)
    assert not _alarms(pipeline)["lamp_failure"].active
    book.end_now(window)
    assert book.release_ended(pipeline.tickets) == 0
    assert pipeline.tickets.list(TicketFilter()) == []


def test_a_raise_outside_any_window_opens_its_ticket_as_before(pipeline: FedPipeline) -> None:
    book = attach(pipeline.tickets)
    now = datetime.now(UTC)
    # Another device's window, and one of this device that has not begun.
    _window(book, now - timedelta(hours=1), now + timedelta(hours=1), "lc-2")
    _window(book, now + timedelta(hours=1), now + timedelta(hours=2), "lc-1")
    _lamp_failure(pipeline, now)
    assert not _alarms(pipeline)["lamp_failure"].held
    assert [t.rule for t in pipeline.tickets.list(TicketFilter())] == ["lamp_failure"]


def test_a_building_window_holds_the_devices_of_that_building(pipeline: FedPipeline) -> None:
    from records.devices import DeviceDirectory

    DeviceDirectory(pipeline.tickets.db).register(
        {"site": "s1", "device_id": "lc-1", "device_type": "lighting_circuit", "building": "Tower B"}
    )
    book = attach(pipeline.tickets)
    now = datetime.now(UTC)
    book.add(Covered("s1", (), "Tower B"), now - timedelta(hours=1), now + timedelta(hours=1), "works", "eng")
    _lamp_failure(pipeline, now)
    assert _alarms(pipeline)["lamp_failure"].held


def test_starting_a_work_order_opens_a_window_on_its_device_until_it_is_resolved(
    pipeline: FedPipeline,
) -> None:
    book = attach(pipeline.tickets)
    tickets = pipeline.tickets
    ticket = tickets.open_ticket(
        NewTicket(site="s1", title="Relamp", source=Source.MAINTENANCE, device_id="lc-1"), "eng"
    )
    _add_work_order(tickets.db, ticket.id)
    for action in (Action.ACKNOWLEDGE, Action.START):
        tickets.act(ticket.id, action, ActionFields(), "eng")
    [window] = book.list(current_only=True)
    assert window.device_ids == ["lc-1"] and window.work_order_id is not None
    # The engineer switches the circuit off at its breaker: no page for the job itself.
    metrics = {"on": False, "breaker_tripped": True, "power_w": 0.0, "lamp_failures": 0.0}
    pipeline.deliver(LIGHTS, {"ts": _ms(datetime.now(UTC)), "seq": 1, "metrics": metrics})
    assert _alarms(pipeline)["breaker_tripped"].held, "the job does not page the engineer doing it"
    record = ActionFields(cause="plan", measures="relamped", result="ok")
    tickets.act(ticket.id, Action.RESOLVE, record, "eng")
    assert book.release_ended(tickets) == 1, "a breaker still open after the job opens its ticket"
    assert book.list(current_only=True) == []


def _add_work_order(db: Any, ticket_id: int) -> None:
    """A work order of a ticket (with a plan made up for it: the window needs only the order)."""
    from records.models import MaintenancePlan

    now = datetime.now(UTC)
    with db.session() as s:
        plan = MaintenancePlan(
            site="s1", name="Relamping", device_ids=["lc-1"], items=[], lead_days=0, created_at=now
        )
        s.add(plan)
        s.flush()
        s.add(
            WorkOrder(
                ticket_id=ticket_id,
                plan_id=plan.id,
                site="s1",
                device_id="lc-1",
                device_type="lighting_circuit",
                due_at=now,
                trigger="calendar",
                checklist=[],
            )
        )
