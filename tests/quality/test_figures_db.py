"""A month of tickets worked at known times (a fake clock) gives exactly the expected figures."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from ground.clock import to_ms
from ground.events import AlarmEvent
from ground.severity import Severity
from quality.figures import quality_figures
from quality.monthly import monthly_report
from quality.records import QualityRecords
from quality.rows import tickets_csv
from records.db import Database
from records.devices import DeviceDirectory
from records.states import CauseClass, Source
from tickets.lifecycle import Action
from tickets.service import ActionFields, NewTicket, TicketService

UTC_ZONE = ZoneInfo("UTC")
NOV = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
HOUR = 3600
DAY = 86400


class Month:
    """A ticket service on a fake clock, and the steps of working a ticket at given offsets."""

    def __init__(self, db: Database) -> None:
        self.now = NOV
        self.tickets = TicketService(db, reopen_cooldown_s=0, clock=lambda: self.now)
        directory = DeviceDirectory(db)
        for device_id, kind in [
            ("pump-1", "water_pump"),
            ("pump-2", "water_pump"),
            ("pump-3", "water_pump"),
            ("elev-1", "elevator"),
        ]:
            directory.register({"site": "s1", "device_id": device_id, "device_type": kind})
        directory.register({"site": "s2", "device_id": "pump-9", "device_type": "water_pump"})

    def alarm(
        self, at: datetime, device: str, kind: str, rule: str, severity: Severity, site: str = "s1"
    ) -> int:
        """An alarm raised at `at` and cleared a minute later; its ticket's id."""
        self.now = at
        event = AlarmEvent(
            kind="raised",
            site=site,
            device_type=kind,
            device_id=device,
            rule=rule,
            severity=severity,
            ts=to_ms(at),
            title=rule,
            detail={},
        )
        ticket_id = self.tickets.apply_alarm(event)
        assert ticket_id is not None
        self.tickets.apply_alarm(replace(event, kind="cleared", ts=to_ms(at) + 60_000))
        return ticket_id

    def report(self, at: datetime, severity: Severity, device: str | None = None, **kw: object) -> int:
        """A ticket opened by hand at `at`."""
        self.now = at
        new = NewTicket(site="s1", title="reported", severity=severity, device_id=device, **kw)  # type: ignore[arg-type]
        return self.tickets.open_ticket(new, "desk").id

    def work(
        self,
        ticket_id: int,
        ack_s: int,
        resolve_s: int | None,
        close: ActionFields | None = None,
        **done: object,
    ) -> None:
        """Acknowledge `ack_s` after opening, resolve `resolve_s` after it, then close a minute later."""
        opened = self.tickets.get(ticket_id).opened_at
        self.now = opened + timedelta(seconds=ack_s)
        self.tickets.act(ticket_id, Action.ACKNOWLEDGE, ActionFields(), "eng")
        self.tickets.act(ticket_id, Action.START, ActionFields(), "eng")
        if resolve_s is None:
            return
        self.now = opened + timedelta(seconds=resolve_s)
        record = ActionFields(cause="c", measures="m", result="r", **done)  # type: ignore[arg-type]
        self.tickets.act(ticket_id, Action.RESOLVE, record, "eng")
        self.now += timedelta(seconds=60)
        self.tickets.act(ticket_id, Action.CLOSE, close or ActionFields(), "eng")


@pytest.fixture
def month(db: Database) -> Month:
    """November 2026 on site s1 (and a ticket on s2 and one in October)."""
    m = Month(db)
    # pump-1: four routine faults, the "bad actor".
    for day, (ack, resolve) in enumerate([(600, HOUR), (1200, 2 * HOUR), (HOUR, 2 * DAY), (90_000, 4 * DAY)]):
        ticket = m.alarm(
            NOV + timedelta(days=5 * day), "pump-1", "water_pump", "pump_fault", Severity.ROUTINE
        )
        m.work(ticket, ack, resolve, cause_class=CauseClass.PROCESS if day == 0 else None)
    # elev-1: an emergency from an alarm and a major fault an occupant reported.
    ticket = m.alarm(NOV + timedelta(days=1), "elev-1", "elevator", "entrapment", Severity.EMERGENCY)
    m.work(
        ticket,
        400,
        2 * HOUR,
        cause_class=CauseClass.EQUIPMENT,
        temporary_measures="t",
        emergency_plan_started=True,
        leadership_informed=True,
    )
    ticket = m.report(NOV + timedelta(days=3), Severity.MAJOR, "elev-1")
    happy = ActionFields(followup="called", satisfaction=5, satisfaction_comment="quick")
    m.work(
        ticket,
        1500,
        30_000,
        happy,
        cause_class=CauseClass.STAFF,
        emergency_plan_started=True,
        leadership_informed=True,
    )
    # An occupant's routine report without a device, scored 2.
    ticket = m.report(NOV + timedelta(days=4), Severity.ROUTINE)
    m.work(ticket, 100, 200, ActionFields(followup="called", satisfaction=2))
    # Planned work: no fault, left out of timing and repeat faults.
    ticket = m.report(NOV + timedelta(days=6), Severity.ROUTINE, "pump-2", source=Source.MAINTENANCE)
    m.work(ticket, 10, 20)
    # An occupant's report nobody acknowledged: overdue now.
    m.report(datetime(2026, 11, 20, tzinfo=UTC), Severity.ROUTINE)
    # Another site, and the month before.
    m.alarm(NOV + timedelta(days=2), "pump-9", "water_pump", "pump_fault", Severity.ROUTINE, site="s2")
    m.alarm(datetime(2026, 10, 10, tzinfo=UTC), "pump-2", "water_pump", "pump_fault", Severity.MAJOR)
    m.now = NOW
    return m


def _november(month: Month) -> dict[str, Any]:
    records = QualityRecords(month.tickets.db, UTC_ZONE, clock=lambda: NOW)
    period = records.period(
        frozenset({"s1"}), datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)
    )
    return quality_figures(period, ["s1"])


def test_a_month_of_tickets_gives_the_expected_counts_and_times(month: Month) -> None:
    f = _november(month)
    assert f["tickets"] == {
        "total": 9,
        "by_class": {"routine": 7, "major": 1, "emergency": 1},
        "by_source": {"alarm": 5, "occupant": 3, "patrol": 0, "maintenance": 1},
        "by_device_type": {"elevator": 2, "none": 2, "water_pump": 5},
        "overdue_now": 1,
    }
    routine, major, emergency = f["timing"]
    # Routine faults: the pump's four and the occupant's (100 s, 200 s); the unacknowledged one has no time.
    assert routine["tickets"] == 6
    assert routine["acknowledge"] == {
        "count": 5,
        "median_s": 1200.0,  # 100, 600, 1200, 3600, 90000
        "p90_s": 90_000.0,  # rank ⌈0.9 · 5⌉ = 5
        "target_s": 24 * HOUR,
        "target_by": "contract",
        "within_target": 4,
        "share_within_target": 0.8,
    }
    assert routine["resolve"] == {
        "count": 5,
        "median_s": 7200.0,  # 200, 3600, 7200, 172800, 345600
        "p90_s": 345_600.0,
        "target_s": 72 * HOUR,
        "target_by": "product",
        "within_target": 4,
        "share_within_target": 0.8,
    }
    assert (major["acknowledge"]["median_s"], major["acknowledge"]["share_within_target"]) == (1500.0, 1.0)
    assert (major["resolve"]["p90_s"], major["resolve"]["within_target"]) == (30_000.0, 1)
    # The emergency took 400 s against the contract's 5 minutes.
    assert (emergency["acknowledge"]["p90_s"], emergency["acknowledge"]["within_target"]) == (400.0, 0)
    assert emergency["resolve"]["share_within_target"] == 1.0


def test_repeat_faults_occupants_and_cause_classes(month: Month) -> None:
    f = _november(month)
    assert f["repeat_faults"]["bad_actors"] == [
        {
            "site": "s1",
            "device_id": "pump-1",
            "device_type": "water_pump",
            "tickets": 4,
            "rules": ["pump_fault"],
        }
    ]
    per_100 = {r["device_type"]: r for r in f["repeat_faults"]["per_100_devices"]}
    assert per_100["water_pump"] == {
        "device_type": "water_pump",
        "faults": 4,
        "devices": 3,
        "per_100_devices": 400 / 3,
    }
    assert per_100["elevator"]["per_100_devices"] == 200.0
    assert f["occupants"] == {
        "reports": 3,
        "closed": 2,
        "close_median_s": (30_060 + 260) / 2,
        "close_p90_s": 30_060.0,
        "scored": 2,
        "mean_score": 3.5,
        "scores": {"1": 0, "2": 1, "3": 0, "4": 0, "5": 1},
        "satisfied": 1,
        "share_satisfied": 0.5,
    }
    assert f["cause_classes"] == {
        "resolved": 7,
        "by_class": {"process": 1, "staff": 1, "equipment": 1, "external": 0, "unclassed": 4},
    }
    assert f["alarms"]["total"] == 5
    assert f["alarms"]["top_rules"] == [
        {"rule": "pump_fault", "alarms": 4},
        {"rule": "entrapment", "alarms": 1},
    ]
    assert [d["alarms"] for d in f["alarms"]["per_day"] if d["alarms"]] == [1, 1, 1, 1, 1]
    assert len(f["alarms"]["per_day"]) == 30
    assert f["alarms"]["busiest_10_min"] == [{"site": "s1", "start": NOV, "alarms": 1, "flood": False}]


def test_every_figure_is_also_given_per_month(month: Month) -> None:
    records = QualityRecords(month.tickets.db, UTC_ZONE, clock=lambda: NOW)
    period = records.period(None, datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC))
    f = quality_figures(period, None)
    october, november = f["months"]
    assert (october["month"], november["month"]) == ("2026-10", "2026-11")
    assert october["tickets"]["by_class"] == {"routine": 0, "major": 1, "emergency": 0}
    assert november["tickets"]["total"] == 10  # s1's nine and s2's one
    assert f["tickets"]["total"] == october["tickets"]["total"] + november["tickets"]["total"]


def test_the_csv_rows_add_up_to_the_figures(month: Month) -> None:
    records = QualityRecords(month.tickets.db, UTC_ZONE, clock=lambda: NOW)
    period = records.period(
        frozenset({"s1"}), datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)
    )
    f = quality_figures(period, ["s1"])
    rows = list(csv.DictReader(io.StringIO(tickets_csv(period.tickets))))
    assert len(rows) == f["tickets"]["total"]
    for severity, n in f["tickets"]["by_class"].items():
        assert sum(r["class"] == severity for r in rows) == n
    assert sum(r["overdue_now"] == "yes" for r in rows) == f["tickets"]["overdue_now"]
    routine = [r for r in rows if r["class"] == "routine" and r["source"] != "maintenance"]
    within = sum(r["acknowledged_within_target"] == "yes" for r in routine)
    assert within == f["timing"][0]["acknowledge"]["within_target"]
    assert sum(r["satisfied"] == "yes" for r in rows) == f["occupants"]["satisfied"]


def test_the_monthly_report_has_the_month_its_trend_and_what_is_overdue(month: Month) -> None:
    records = QualityRecords(month.tickets.db, UTC_ZONE, clock=lambda: NOW)
    report = monthly_report(records, "s1", "2026-11")
    assert [m["month"] for m in report.trend][::11] == ["2025-12", "2026-11"]
    assert len(report.trend) == 12
    assert report.figures["tickets"]["total"] == 9 == len(report.rows)
    assert [m["tickets"]["total"] for m in report.trend][-2:] == [1, 9]
    # Open past their response time whenever opened: October's unacknowledged alarm too, most overdue first.
    assert [(t.site, t.opened_at) for t in report.overdue] == [
        ("s1", datetime(2026, 10, 10, tzinfo=UTC)),
        ("s1", datetime(2026, 11, 20, tzinfo=UTC)),
    ]
    with pytest.raises(ValueError, match="YYYY-MM"):
        monthly_report(records, "s1", "2026-13")
