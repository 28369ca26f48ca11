"""The plans file: every problem named by item and field, the shipped example, `facility maintenance load`."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from facility.cli import main
from maintenance.planfile import EXAMPLE, PlanFileError, read_plan_file
from records.db import Database, migrate
from records.models import Contractor, MaintenancePlan, Ticket, WorkOrder
from simulators.inventory import inventory
from simulators.publisher import SimulationPlan

TODAY = date(2027, 1, 1)

BAD = """\
version: 1
colour: red
contractors:
  - id: C LIFT
    name: Lift Co
    licence_number: TS-1
    licence_expires: soon
    equipment_types: [elevator, toaster]
plans:
  - site: s1
    name: Lifts
    device_type: lift
    items: [brakes, brakes]
    every: P1X
    first_due: next week
    lead_days: -1
    counter: {metric: run_count, every: 0}
    running_hours: {metric: running}
    contractor: c-lift
  - site: s1
    items: [brakes]
  - site: s1
    name: Pumps
    device_type: water_pump
    items: [seal]
  - site: s1
    name: Pumps
    device_ids: [pump-1]
    items: [seal]
    every: P1M
"""


def test_every_problem_is_named_with_its_item_and_field() -> None:
    with pytest.raises(PlanFileError) as refused:
        read_plan_file(BAD, "plans.yaml", TODAY)
    assert refused.value.problems == [
        "field 'colour': unknown key (allowed: version, contractors, plans)",
        "contractor 'C LIFT' (#1), field 'id': required, an id like c-lift; got 'C LIFT'",
        "contractor 'C LIFT' (#1), field 'licence_expires': 'soon' is not a date like 2027-06-30",
        "contractor 'C LIFT' (#1), field 'equipment_types.toaster': unknown device type 'toaster'",
        "plan 'Lifts' (#1), field 'device_type': unknown device type 'lift'",
        "plan 'Lifts' (#1), field 'items': an item is listed twice",
        "plan 'Lifts' (#1), field 'every': 'P1X' is not an ISO 8601 period of years, months, weeks or days,"
        " like P15D, P1M, P1Y",
        "plan 'Lifts' (#1), field 'first_due': 'next week' is not a date, a time (2026-12-01T08:00:00Z)"
        " or today",
        "plan 'Lifts' (#1), field 'lead_days': -1 is not a whole number of days from 0 to 366",
        "plan 'Lifts' (#1), field 'counter.every': 0 is not a number of counts > 0",
        "plan 'Lifts' (#1), field 'running_hours.every': required",
        "plan #2, field 'name': required: text of 1 to 200 characters",
        "plan #2, field 'device_ids': name the devices, a device_type or a building the plan covers",
        "plan 'Pumps' (#3), field 'every': give when it falls due: every (a period), counter"
        " or running_hours",
        "plan 'Pumps' (#4), field 'name': another plan of s1 has this name (#3)",
    ]


def test_yaml_that_does_not_parse_or_a_key_given_twice_is_one_problem() -> None:
    with pytest.raises(PlanFileError, match="key 'plans' given twice"):
        read_plan_file("version: 1\nplans: []\nplans: []\n", "p.yaml", TODAY)


def test_first_due_reads_dates_times_and_today() -> None:
    text = """\
version: 1
plans:
  - {site: s1, name: a, device_ids: [d1], items: [x], every: P1M, first_due: 2027-02-01}
  - {site: s1, name: b, device_ids: [d1], items: [x], every: P1M, first_due: 2027-02-01T08:30:00+08:00}
  - {site: s1, name: c, device_ids: [d1], items: [x], every: P1M, first_due: today}
  - {site: s1, name: d, device_ids: [d1], items: [x], every: P1M}
"""
    plans = read_plan_file(text, "p.yaml", TODAY).plans
    assert [p.first_due for p in plans] == [
        datetime(2027, 2, 1, tzinfo=UTC),
        datetime(2027, 2, 1, 0, 30, tzinfo=UTC),
        datetime(2027, 1, 1, tzinfo=UTC),
        None,
    ]


def test_the_example_covers_the_simulated_sites_equipment_with_the_catalogues_cycles() -> None:
    found = read_plan_file(EXAMPLE.read_text(encoding="utf-8"), str(EXAMPLE), TODAY)
    fleet = {(p.site, p.device_type) for p in inventory(SimulationPlan())}
    cycles = {(p.device_type, p.every) for p in found.plans}
    assert {("elevator", "P15D"), ("emergency_light", "P1M"), ("emergency_light", "P1Y")} <= cycles
    assert {t for t, _ in cycles} == {"elevator", "emergency_light", "fire_pump", "water_pump", "chiller"}
    assert all((p.site, p.device_type) in fleet for p in found.plans)
    lifts = next(p for p in found.plans if p.device_type == "elevator")
    licensed = dict(found.contractors)[lifts.contractor or ""]
    assert "elevator" in licensed.equipment_types


def test_the_command_loads_a_file_again_without_doubling_and_refuses_a_bad_one_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FACILITY_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("FACILITY_DATABASE_URL", raising=False)
    assert main(["maintenance", "load", str(EXAMPLE)]) == 0
    assert "loaded 2 contractors and 6 plans (6 new)" in capsys.readouterr().out
    db = Database(f"sqlite:///{tmp_path / 'data' / 'records.db'}")
    migrate(db.engine)
    with db.read() as s:
        first = {p.name: p.first_due for p in s.scalars(select(MaintenancePlan))}
    assert main(["maintenance", "load", str(EXAMPLE)]) == 0
    assert "(0 new)" in capsys.readouterr().out
    with db.read() as s:
        assert {p.name: p.first_due for p in s.scalars(select(MaintenancePlan))} == first
        assert len(s.scalars(select(Contractor)).all()) == 2
        orders = len(s.scalars(select(WorkOrder)).all())
    # The lifts' plan naming a contractor whose licence does not cover them: nothing is loaded.
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        EXAMPLE.read_text(encoding="utf-8")
        .replace("contractor: c-lift", "contractor: c-fire")
        .replace("name: Chiller quarterly service", "name: Chiller service (new)")
    )
    assert main(["maintenance", "load", str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}: plan 'Lift maintenance (15-day)' (#1), field 'contractor': the licence of c-fire" in err
    with db.read() as s:
        assert len(s.scalars(select(MaintenancePlan)).all()) == 6
        assert len(s.scalars(select(WorkOrder)).all()) == orders
        assert not s.scalars(select(Ticket).where(Ticket.title.like("Chiller service (new)%"))).all()
    assert main(["maintenance", "load", str(tmp_path / "missing.yaml")]) == 1
    db.close()
