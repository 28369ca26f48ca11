"""The figures' pure parts: the statistics, floods, patrol and maintenance figures, months."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from quality.figures import alarm_load, busiest_window, maintenance, patrol
from quality.period import Period, by_month, months_between
from quality.rows import AlarmRow
from quality.stats import median, percentile, share
from records.models import PatrolRound, PatrolVisit, WorkOrder
from records.states import RoundStatus, VisitStatus

T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
UTC_ZONE = ZoneInfo("UTC")


@pytest.mark.parametrize(
    ("values", "expected_median", "expected_p90"),
    [
        ([], None, None),
        ([7], 7.0, 7.0),
        ([1, 2], 1.5, 2.0),
        ([5, 1, 3], 3.0, 5.0),
        (list(range(1, 11)), 5.5, 9.0),  # rank ⌈0.9 · 10⌉ = 9
        (list(range(1, 12)), 6.0, 10.0),  # rank ⌈0.9 · 11⌉ = 10
        (list(range(1, 21)), 10.5, 18.0),
    ],
)
def test_median_and_nearest_rank_percentile(values, expected_median, expected_p90) -> None:
    assert median(values) == expected_median
    assert percentile(values, 90) == expected_p90


def test_share_of_nothing_is_none() -> None:
    assert share(0, 0) is None and share(1, 4) == 0.25


def test_more_than_ten_alarms_in_ten_minutes_is_a_flood() -> None:
    eleven = [T0 + timedelta(seconds=59 * i) for i in range(11)]  # 9 min 50 s from first to last
    assert busiest_window(eleven) == (T0, 11)
    spread = [T0 + timedelta(minutes=i) for i in range(11)]  # the 11th is 10 minutes after the first
    assert busiest_window(spread) == (T0, 10)
    assert busiest_window([]) == (None, 0)
    alarms = [AlarmRow("s1", f"d{i}", "water_pump", "r", t, i < 2) for i, t in enumerate(eleven)]
    alarms += [AlarmRow("s2", "d", "water_pump", "r", t, False) for t in spread]
    period = Period(T0, T0 + timedelta(days=1), UTC_ZONE, alarms=alarms)
    load = alarm_load(alarms, period)
    assert load["busiest_10_min"] == [
        {"site": "s1", "start": T0, "alarms": 11, "flood": True},
        {"site": "s2", "start": T0, "alarms": 10, "flood": False},
    ]
    assert (load["held"], load["total"], load["top_rules"]) == (2, 22, [{"rule": "r", "alarms": 22}])
    # A day starting 08:00 touches two calendar days.
    assert [d["day"] for d in load["per_day"]] == ["2026-11-02", "2026-11-03"]


def _round(route: str, guards: list[str], status: RoundStatus, visits: list[VisitStatus]) -> PatrolRound:
    r = PatrolRound(
        site="s1", route_id=route, guard=guards[0], guards=guards, start=T0, window_end=T0, status=status
    )
    r.visits = [
        PatrolVisit(position=i, checkpoint_id=f"cp{i}", due=T0, status=v) for i, v in enumerate(visits)
    ]
    return r


def test_patrol_counts_checkpoints_on_time_late_and_missed_by_route_and_guard() -> None:
    on, late, missed = VisitStatus.ON_TIME, VisitStatus.LATE, VisitStatus.MISSED
    rounds = [
        _round("night", ["gina"], RoundStatus.COMPLETED, [on, on, late]),
        _round("night", ["gina", "hal"], RoundStatus.INCOMPLETE, [on, missed, missed]),
        _round("day", ["hal"], RoundStatus.COMPLETED, [late]),
        _round("day", ["hal"], RoundStatus.IN_PROGRESS, [on, VisitStatus.PENDING]),  # not ended: left out
    ]
    f = patrol(Period(T0, T0 + timedelta(days=1), UTC_ZONE, rounds=rounds))
    assert {
        k: f[k] for k in ("rounds", "completed", "checkpoints", "on_time", "late", "missed", "other")
    } == {
        "rounds": 3,
        "completed": 2,
        "checkpoints": 7,
        "on_time": 3,
        "late": 2,
        "missed": 2,
        "other": 0,
    }
    routes = {r["route"]: (r["rounds"], r["on_time"], r["late"], r["missed"]) for r in f["by_route"]}
    assert routes == {"night": (2, 3, 1, 2), "day": (1, 0, 1, 0)}
    guards = {r["guard"]: (r["rounds"], r["late"]) for r in f["by_guard"]}
    assert guards == {"gina": (2, 1), "hal": (2, 1)}


def test_maintenance_on_plan_by_the_due_day() -> None:
    def order(due: datetime, done: datetime | None, kind: str = "elevator") -> WorkOrder:
        return WorkOrder(site="s1", device_id="d", device_type=kind, due_at=due, done_at=done)

    orders = [
        order(T0, T0 + timedelta(hours=6)),  # same day: on plan
        order(T0, T0 + timedelta(days=2)),  # late
        order(T0, None),  # not done
        order(T0, T0 - timedelta(days=1), "fire_pump"),
    ]
    f = maintenance(Period(T0, T0 + timedelta(days=1), UTC_ZONE, work_orders=orders))
    assert (f["due"], f["on_plan"], f["late"], f["not_done"], f["on_plan_rate"]) == (4, 2, 1, 1, 0.5)
    assert [(r["device_type"], r["on_plan_rate"]) for r in f["by_type"]] == [
        ("elevator", 1 / 3),
        ("fire_pump", 1.0),
    ]


def test_months_follow_the_sites_calendar() -> None:
    shanghai = ZoneInfo("Asia/Shanghai")
    # 16:30 UTC on 31 October is already November in Shanghai.
    since = datetime(2026, 10, 31, 16, 30, tzinfo=UTC)
    assert months_between(since, datetime(2027, 1, 1, tzinfo=UTC), shanghai) == [
        "2026-11",
        "2026-12",
        "2027-01",
    ]
    cuts = by_month(Period(since, datetime(2026, 12, 15, tzinfo=UTC), shanghai))
    assert [(c.since, c.until) for c in cuts] == [
        (since, datetime(2026, 12, 1, tzinfo=shanghai)),
        (datetime(2026, 12, 1, tzinfo=shanghai), datetime(2026, 12, 15, tzinfo=UTC)),
    ]
