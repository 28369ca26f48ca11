"""The maintenance service on a real records database (SQLite and PostgreSQL), with a clock the test sets:
a year of calendar plans, use counted from decoded telemetry, checklists, licences and on-plan figures."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from ground.clock import to_ms
from ground.contract import decode
from maintenance.service import ContractorSpec, MaintenanceError, MaintenanceService, Mark, PlanSpec
from maintenance.usage import UseRule
from records.db import Database
from records.devices import DeviceDirectory
from records.models import Ticket, WorkOrder
from tickets.lifecycle import Action, Source, Status, TransitionRefused
from tickets.service import ActionFields, TicketFilter, TicketService

SITE = "s1"
NEW_YEAR = datetime(2027, 1, 1, tzinfo=UTC)


class Clock:
    """The wall clock the service judges due dates by, set by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Maintenance:
    """A maintenance service and its ticket service on the test's database, on the test's clock."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        self.start()

    def start(self) -> None:
        """Build the services afresh, as a restarted process does."""
        from maintenance.service import on_ticket_action

        self.tickets = TicketService(self.db, clock=self.clock, action_checks=[on_ticket_action])
        self.service = MaintenanceService(self.db, self.tickets, self.clock)

    def orders(self, plan_id: int | None = None) -> list[WorkOrder]:
        """Work orders by due date."""
        q = select(WorkOrder).order_by(WorkOrder.due_at, WorkOrder.device_id)
        if plan_id is not None:
            q = q.where(WorkOrder.plan_id == plan_id)
        with self.db.read() as s:
            return list(s.scalars(q))

    def telemetry(self, device_type: str, device_id: str, when: datetime, seq: int, **metrics: Any) -> None:
        """One reading handed to the service as the collector would: decoded by the contract."""
        topic = f"facility/v1/{SITE}/{device_type}/{device_id}/telemetry"
        payload = {"ts": to_ms(when), "seq": seq, "metrics": metrics}
        self.service.handle([decode(topic, json.dumps(payload).encode(), to_ms(when))])


@pytest.fixture
def clock() -> Clock:
    """New Year's Day 2027, midnight UTC."""
    return Clock(NEW_YEAR)


@pytest.fixture
def m(db: Database, clock: Clock) -> Maintenance:
    """The service with two lifts, two pumps and an emergency light registered on the site."""
    devices = DeviceDirectory(db)
    for device_id, device_type in [
        ("elev-1", "elevator"),
        ("elev-2", "elevator"),
        ("pump-1", "water_pump"),
        ("pump-2", "water_pump"),
        ("elight-1", "emergency_light"),
    ]:
        devices.register({"site": SITE, "device_id": device_id, "device_type": device_type, "building": "A"})
    return Maintenance(db, clock)


def at(day: str) -> datetime:
    """Midnight UTC of an ISO date."""
    return datetime.fromisoformat(day).replace(tzinfo=UTC)


def plan(name: str, **fields: Any) -> PlanSpec:
    """A plan of the test site with a two-item checklist."""
    return PlanSpec(site=SITE, name=name, items=("brakes", "ropes"), **fields)


def lift_contractor(m: Maintenance, expires: date = date(2029, 12, 31), cid: str = "c-lift") -> None:
    """A contractor licensed for lifts."""
    m.service.add_contractor(cid, ContractorSpec("Lift Co", "TS-1", expires, ("elevator",)))


def test_a_year_of_calendar_plans_opens_exactly_the_work_orders_due(m: Maintenance, clock: Clock) -> None:
    monthly = m.service.add_plan(
        plan("Monthly", device_ids=("elight-1",), every="P1M", first_due=at("2027-01-31"), lead_days=3)
    )
    fortnight = m.service.add_plan(plan("Pumps", device_type="water_pump", every="P15D", first_due=NEW_YEAR))
    quarterly = m.service.add_plan(
        plan(
            "Quarterly", building="A", device_type="emergency_light", every="P3M", first_due=at("2027-02-15")
        )
    )
    yearly = m.service.add_plan(
        plan("Yearly", device_ids=("elight-1",), every="P1Y", first_due=at("2027-03-01"), lead_days=7)
    )
    while clock.now < at("2027-12-31"):
        clock.now += timedelta(days=1)
        if clock.now == at("2027-07-01"):
            m.start()  # a restart half-way opens nothing twice
            m.service.open_due()
        m.service.open_due()

    def dues(plan_id: int, device_id: str = "elight-1") -> list[str]:
        return [o.due_at.date().isoformat() for o in m.orders(plan_id) if o.device_id == device_id]

    assert dues(monthly.id) == [
        "2027-01-31", "2027-02-28", "2027-03-31", "2027-04-30", "2027-05-31", "2027-06-30",
        "2027-07-31", "2027-08-31", "2027-09-30", "2027-10-31", "2027-11-30", "2027-12-31",
    ]  # fmt: skip
    for device_id in ("pump-1", "pump-2"):
        assert dues(fortnight.id, device_id) == [
            (NEW_YEAR + timedelta(days=15 * n)).date().isoformat() for n in range(25)
        ]
    assert dues(quarterly.id) == ["2027-02-15", "2027-05-15", "2027-08-15", "2027-11-15"]
    assert dues(yearly.id) == ["2027-03-01"]
    with m.db.read() as s:
        opened = {
            o.due_at: t.opened_at
            for o, t in s.execute(
                select(WorkOrder, Ticket)
                .join(Ticket, Ticket.id == WorkOrder.ticket_id)
                .where(WorkOrder.plan_id == monthly.id)
            )
        }
        tickets = s.scalars(select(Ticket).where(Ticket.source == Source.MAINTENANCE)).all()
    assert all(when == due - timedelta(days=3) for due, when in opened.items()), "opened 3 days ahead"
    assert len(tickets) == 12 + 50 + 4 + 1
    sample = next(t for t in tickets if t.device_id == "elight-1")
    assert (sample.severity, sample.status) == ("routine", Status.OPEN)
    assert sample.response_due == next(o.due_at for o in m.orders() if o.ticket_id == sample.id)


def test_a_counter_opens_a_work_order_every_n_and_a_replay_counts_nothing(m: Maintenance) -> None:
    lift_contractor(m)
    p = m.service.add_plan(
        plan("Lift", device_ids=("elev-1",), counter=UseRule("run_count", 100), contractor="c-lift")
    )
    t0 = NEW_YEAR
    readings = [(0, 1000), (1, 1050), (2, 1099), (3, 1100), (4, 1150), (5, 1199)]
    for seq, count in readings:
        m.telemetry("elevator", "elev-1", t0 + timedelta(seconds=seq), seq, run_count=count)
    [first] = m.orders(p.id)
    assert (first.trigger, first.due_at, first.device_type) == (
        "counter",
        t0 + timedelta(seconds=3),
        "elevator",
    )
    m.start()  # a restart keeps the count
    for seq, count in readings:  # the same readings again: a replay
        m.telemetry("elevator", "elev-1", t0 + timedelta(seconds=seq), seq, run_count=count)
    m.telemetry("elevator", "elev-1", t0 + timedelta(seconds=6), 6, moving=True)  # no count in it
    assert len(m.orders(p.id)) == 1
    m.telemetry("elevator", "elev-1", t0 + timedelta(seconds=7), 7, run_count=1200)
    assert [o.due_at for o in m.orders(p.id)] == [t0 + timedelta(seconds=3), t0 + timedelta(seconds=7)]
    # Another lift, not covered by the plan, counts for nothing.
    m.telemetry("elevator", "elev-2", t0, 0, run_count=1)
    m.telemetry("elevator", "elev-2", t0 + timedelta(seconds=1), 1, run_count=100_000)
    assert {o.device_id for o in m.orders()} == {"elev-1"}


def test_running_hours_integrate_the_flag_by_device_time(m: Maintenance) -> None:
    p = m.service.add_plan(plan("Pumps", device_type="water_pump", running_hours=UseRule("running", 1)))
    t0 = NEW_YEAR
    m.telemetry("water_pump", "pump-1", t0, 0, running=True)
    for n in range(1, 6):  # 50 minutes running, reported every 10 (pressure only: the flag unchanged)
        m.telemetry("water_pump", "pump-1", t0 + timedelta(minutes=10 * n), n, outlet_pressure_mpa=0.4)
    m.telemetry("water_pump", "pump-1", t0 + timedelta(minutes=55), 6, running=False)
    m.telemetry("water_pump", "pump-1", t0 + timedelta(minutes=90), 7, running=True)  # 35 min stopped
    assert m.orders(p.id) == []
    m.telemetry("water_pump", "pump-1", t0 + timedelta(minutes=94), 8, running=True)  # 59 min run
    assert m.orders(p.id) == []
    m.telemetry("water_pump", "pump-1", t0 + timedelta(minutes=95), 9, running=True)  # 60 min
    [order] = m.orders(p.id)
    assert (order.trigger, order.device_id, order.due_at) == (
        "running_hours",
        "pump-1",
        t0 + timedelta(minutes=95),
    )
    m.telemetry("water_pump", "pump-1", t0 + timedelta(minutes=95), 9, running=True)  # redelivered
    assert len(m.orders(p.id)) == 1


def test_a_work_order_resolves_only_with_its_checklist_marked_and_records_who_and_when(
    m: Maintenance, clock: Clock
) -> None:
    p = m.service.add_plan(plan("Pumps", device_ids=("pump-1",), every="P1M", responsible="eng-1"))
    [order] = m.orders(p.id)
    ticket = m.tickets.get(order.ticket_id)
    assert (ticket.assignee, ticket.title) == ("eng-1", "Pumps: pump-1")
    for action in (Action.ACKNOWLEDGE, Action.START):
        m.tickets.act(order.ticket_id, action, ActionFields(), "eng-1")
    with pytest.raises(TransitionRefused, match="brakes, ropes"):
        m.tickets.act(order.ticket_id, Action.RESOLVE, ActionFields(), "eng-1")
    with pytest.raises(MaintenanceError, match="ropes: not done needs a note") as refused:
        m.service.mark(order.ticket_id, [Mark("ropes", False)], "eng-1")
    assert refused.value.path == ("items", 0, "note")
    with pytest.raises(MaintenanceError, match="'bolts' is not on the checklist"):
        m.service.mark(order.ticket_id, [Mark("bolts", True)], "eng-1")
    m.service.mark(order.ticket_id, [Mark("brakes", True)], "eng-1")
    with pytest.raises(TransitionRefused, match="ropes") as still:
        m.tickets.act(order.ticket_id, Action.RESOLVE, ActionFields(), "eng-1")
    assert "brakes" not in str(still.value)
    m.service.mark(order.ticket_id, [Mark("ropes", False, "worn, replacement ordered")], "eng-2")
    clock.now += timedelta(hours=2)
    resolved = m.tickets.act(order.ticket_id, Action.RESOLVE, ActionFields(), "eng-2")
    assert resolved.status == Status.RESOLVED
    done = m.service.work_order(order.ticket_id)
    assert (done.done_at, done.done_by) == (clock.now, "eng-2")
    assert done.checklist == [
        {"item": "brakes", "done": True, "note": None},
        {"item": "ropes", "done": False, "note": "worn, replacement ordered"},
    ]
    assert [a.action for a in m.tickets.get(order.ticket_id).audit].count("checklist") == 2
    [(record, name)] = m.service.history(None, site=SITE)
    assert (record.ticket_id, name) == (order.ticket_id, "Pumps")
    with pytest.raises(Exception, match="resolved"):
        m.service.mark(order.ticket_id, [Mark("ropes", True)], "eng-2")
    m.tickets.act(order.ticket_id, Action.REOPEN, ActionFields(), "eng-2")
    assert m.service.work_order(order.ticket_id).done_at is None
    assert m.service.history(None, site=SITE) == []


def test_lifts_and_fire_equipment_need_a_contractor_licensed_for_them(m: Maintenance) -> None:
    lifts = plan("Lifts", device_type="elevator", every="P15D")
    with pytest.raises(MaintenanceError, match="licensed contractor") as refused:
        m.service.add_plan(lifts)
    assert refused.value.field == "contractor"
    m.service.add_contractor("c-fire", ContractorSpec("Fire Co", "XF-1", date(2029, 1, 1), ("fire_pump",)))
    with pytest.raises(MaintenanceError, match="c-fire does not cover elevator"):
        m.service.add_plan(plan("Lifts", device_ids=("elev-1",), every="P15D", contractor="c-fire"))
    lift_contractor(m, expires=date(2026, 12, 1), cid="c-old")
    with pytest.raises(MaintenanceError, match="expired on 2026-12-01"):
        m.service.add_plan(plan("Lifts", device_type="elevator", every="P15D", contractor="c-old"))
    with pytest.raises(MaintenanceError, match="no contractor c-none"):
        m.service.add_plan(plan("Pumps", device_type="water_pump", every="P1M", contractor="c-none"))
    lift_contractor(m)
    m.service.add_plan(plan("Lifts", device_type="elevator", every="P15D", contractor="c-lift"))
    # Pumps need no licence.
    m.service.add_plan(plan("Pumps", device_type="water_pump", every="P1M"))
    with pytest.raises(MaintenanceError, match="needs the licence to cover elevator"):
        m.service.update_contractor(
            "c-lift", ContractorSpec("Lift Co", "TS-1", date(2029, 1, 1), ("fire_pump",))
        )


def test_a_licence_expiring_within_30_days_opens_one_ticket_per_expiry_date(
    m: Maintenance, clock: Clock
) -> None:
    lift_contractor(m, expires=date(2027, 3, 1))
    assert m.service.check_licences() == 0
    clock.now = datetime(2027, 1, 30, tzinfo=UTC)  # 30 days before
    assert m.service.check_licences() == 1
    assert m.service.check_licences() == 0
    m.start()
    assert m.service.check_licences() == 0
    licence = m.tickets.list(TicketFilter(source=Source.MAINTENANCE))
    assert [t.title for t in licence] == ["Licence of contractor Lift Co expires on 2027-03-01"]
    # Renewed for a month only: the new expiry date gets its own ticket at once.
    m.service.update_contractor("c-lift", ContractorSpec("Lift Co", "TS-2", date(2027, 2, 20), ("elevator",)))
    assert len(m.tickets.list(TicketFilter(source=Source.MAINTENANCE))) == 2
    assert m.service.contractor("c-lift").expiry_ticket_for == date(2027, 2, 20)


def test_on_plan_rates_per_site_and_type_are_exact(m: Maintenance, clock: Clock) -> None:
    day = timedelta(days=1)
    p = m.service.add_plan(plan("Pumps", device_type="water_pump", every="P1D", first_due=NEW_YEAR))
    m.service.add_plan(plan("Light", device_ids=("elight-1",), every="P2D", first_due=NEW_YEAR))
    for _ in range(4):  # 4 days: pump orders due Jan 1-4 (2 pumps), light Jan 1 and 3
        m.service.open_due()
        clock.now += day
    pump_orders = m.orders(p.id)
    assert len(pump_orders) == 8

    def work(ticket_id: int, when: datetime) -> None:
        clock.now = when
        m.service.mark(ticket_id, [Mark("brakes", True), Mark("ropes", True)], "eng")
        for action in (Action.ACKNOWLEDGE, Action.START, Action.RESOLVE):
            m.tickets.act(ticket_id, action, ActionFields(), "eng")

    on_time = [o for o in pump_orders if o.due_at.day in (1, 2)]  # 4 of them, done on their day
    for o in on_time:
        work(o.ticket_id, o.due_at + timedelta(hours=20))
    late = next(o for o in pump_orders if o.due_at.day == 3)
    work(late.ticket_id, late.due_at + timedelta(days=1, hours=1))
    clock.now = datetime(2027, 1, 10, tzinfo=UTC)
    rates = {(r.site, r.device_type): r for r in m.service.figures(None, NEW_YEAR, NEW_YEAR + 4 * day)}
    pumps = rates[(SITE, "water_pump")]
    assert (pumps.due, pumps.on_plan, pumps.late, pumps.not_done, pumps.rate) == (8, 4, 1, 3, 0.5)
    light = rates[(SITE, "emergency_light")]
    assert (light.due, light.on_plan, light.rate) == (2, 0, 0.0)
    assert m.service.figures(frozenset({"other"}), NEW_YEAR, NEW_YEAR + 4 * day) == []
    first_two_days = m.service.figures(None, NEW_YEAR, NEW_YEAR + 2 * day)
    assert [(r.device_type, r.due, r.rate) for r in first_two_days] == [
        ("emergency_light", 1, 0.0),
        ("water_pump", 4, 1.0),
    ]
