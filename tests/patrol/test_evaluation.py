"""Evaluating a round: every checkpoint status, the round's status and its deadlines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from patrol.evaluation import (
    RoundStatus,
    Scan,
    Stop,
    Timing,
    VisitStatus,
    evaluate,
    in_order,
)

START = datetime(2026, 11, 27, 22, 0, tzinfo=UTC)
TIMING = Timing(tolerance_s=300, grace_s=900, start_grace_s=900)
ROUTE = [Stop(cp, START + timedelta(minutes=m)) for cp, m in (("a", 0), ("b", 10), ("c", 20), ("d", 30))]


def at(minutes: float) -> datetime:
    return START + timedelta(minutes=minutes)


def scans(*walk: tuple[str, float]) -> list[Scan]:
    return [Scan(cp, at(m), "g-1") for cp, m in walk]


def statuses(walk: list[Scan], now_min: float) -> list[str]:
    return [v.status.value for v in evaluate(START, ROUTE, walk, at(now_min), TIMING).visits]


def test_on_time_early_late_by_the_tolerance() -> None:
    walk = scans(("a", 4), ("b", 10 - 5.5), ("c", 20 + 5), ("d", 30 + 6))
    result = evaluate(START, ROUTE, walk, at(40), TIMING)
    assert [v.status for v in result.visits] == [
        VisitStatus.ON_TIME,
        VisitStatus.EARLY,
        VisitStatus.ON_TIME,  # exactly at the tolerance
        VisitStatus.LATE,
    ]
    assert result.visits[3].offset_s == 360 and result.visits[1].offset_s == -330
    assert result.status is RoundStatus.COMPLETED and result.next_deadline is None
    assert result.started_at == at(4)


def test_pending_until_the_grace_then_missed() -> None:
    walk = scans(("a", 0), ("b", 10), ("d", 30))
    before = evaluate(START, ROUTE, walk, at(20 + 14), TIMING)
    assert before.visits[2].status is VisitStatus.PENDING and before.status is RoundStatus.IN_PROGRESS
    assert before.next_deadline == at(35)
    after = evaluate(START, ROUTE, walk, at(35), TIMING)
    assert after.visits[2].status is VisitStatus.MISSED and after.status is RoundStatus.INCOMPLETE
    assert after.next_deadline is None


def test_wrong_order_marks_the_fewest_scans() -> None:
    # c walked before b: c is out of order, and b, in order, came 10 minutes late.
    assert statuses(scans(("a", 0), ("c", 10), ("b", 20), ("d", 30)), 60) == [
        "on_time",
        "late",
        "wrong_order",
        "on_time",
    ]
    # d first, then the route: only d is out of order.
    assert statuses(scans(("d", 0), ("a", 1), ("b", 10), ("c", 20)), 60)[3] == "wrong_order"
    assert in_order([0, 3, 1, 2]) == {0, 1, 2}
    assert in_order([]) == set()


def test_a_tag_read_twice_within_a_minute_counts_once() -> None:
    route = [Stop("gate", START), Stop("yard", at(5)), Stop("gate", at(10))]
    twice = [
        Scan("gate", START, "g"),
        Scan("gate", START + timedelta(seconds=30), "g"),
        Scan("yard", at(5), "g"),
    ]
    result = evaluate(START, route, twice, at(10 + 16), TIMING)
    # The second read 30 s later is the same visit, so the route's return to the gate is missed.
    assert [v.status for v in result.visits] == [VisitStatus.ON_TIME, VisitStatus.ON_TIME, VisitStatus.MISSED]
    back = [*twice, Scan("gate", at(10), "g")]
    assert evaluate(START, route, back, at(30), TIMING).status is RoundStatus.COMPLETED


def test_not_started_and_scheduled() -> None:
    early = evaluate(START, ROUTE, [], at(-5), TIMING)
    assert early.status is RoundStatus.SCHEDULED and not early.not_started and early.next_deadline == at(15)
    late = evaluate(START, ROUTE, [], at(15), TIMING)
    assert late.not_started and late.status is RoundStatus.SCHEDULED and late.next_deadline == at(25)
    assert evaluate(START, ROUTE, [], at(45), TIMING).status is RoundStatus.INCOMPLETE


def test_scans_outside_the_window_do_not_count() -> None:
    walk = scans(("a", -11), ("b", 10), ("d", 30 + 16))
    assert statuses(walk, 60) == ["missed", "on_time", "missed", "missed"]


def test_a_late_upload_is_judged_by_the_scan_time() -> None:
    walk = scans(("a", 0), ("b", 10), ("c", 21), ("d", 30))
    # Evaluated hours later, when the reader was docked: the scan times decide.
    result = evaluate(START, ROUTE, walk, at(600), TIMING)
    assert result.status is RoundStatus.COMPLETED
    assert all(v.status is VisitStatus.ON_TIME for v in result.visits)


def test_a_round_entered_after_its_deadlines_waits_for_the_upload() -> None:
    entered = at(120)
    waiting = evaluate(START, ROUTE, [], entered + timedelta(seconds=5), TIMING, entered)
    assert all(v.status is VisitStatus.PENDING for v in waiting.visits)
    assert waiting.next_deadline == entered + timedelta(seconds=TIMING.settle_s)
    settled = evaluate(START, ROUTE, scans(("a", 0)), entered + timedelta(seconds=10), TIMING, entered)
    assert [v.status.value for v in settled.visits] == ["on_time", "missed", "missed", "missed"]


def test_a_scan_after_the_miss_deadline_does_not_undo_the_miss() -> None:
    # a was due at 0 and missed at 15; a scan at 16 is not a late visit but nothing of this stop.
    walk = scans(("a", 16), ("b", 16.5), ("c", 20), ("d", 30))
    assert statuses(walk, 60) == ["missed", "late", "on_time", "on_time"]


def test_a_scan_serves_the_stop_due_nearest_to_it() -> None:
    route = [Stop("gate", START), Stop("yard", at(10)), Stop("gate", at(20))]
    # The guard skipped the first gate: the read at 19 is the return visit, not a late first one.
    result = evaluate(START, route, [Scan("yard", at(10), "g"), Scan("gate", at(19), "g")], at(40), TIMING)
    assert [v.status for v in result.visits] == [VisitStatus.MISSED, VisitStatus.ON_TIME, VisitStatus.ON_TIME]
