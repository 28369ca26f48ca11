"""Per-device seq accounting."""

from __future__ import annotations

from collector.sequence import SeqTracker, Verdict

D = ("s1", "e1")


def test_gap_counts_loss_and_a_late_arrival_fills_it() -> None:
    t = SeqTracker()
    assert [t.observe(D, s, 100 + s) for s in (0, 1, 4)] == [Verdict.NEW] * 3
    assert t.lost == 2
    assert t.observe(D, 2, 102) is Verdict.LATE
    assert t.lost == 1 and t.duplicates == 0


def test_repeat_with_the_same_ts_is_a_duplicate() -> None:
    t = SeqTracker()
    t.observe(D, 5, 1000)
    t.observe(D, 6, 1001)
    assert t.observe(D, 5, 1000) is Verdict.DUPLICATE
    assert t.observe(D, 6, 1001) is Verdict.DUPLICATE
    assert t.duplicates == 2 and t.lost == 0


def test_lower_seq_with_newer_ts_is_a_reset_not_a_duplicate() -> None:
    t = SeqTracker()
    for s in range(10):
        t.observe(D, s, 1000 + s)
    assert t.observe(D, 0, 5000) is Verdict.RESET
    assert t.observe(D, 1, 5001) is Verdict.NEW
    assert t.lost == 0


def test_devices_are_independent_and_dirty_ones_are_reported_once() -> None:
    t = SeqTracker()
    t.observe(("s1", "a"), 0, 1)
    t.observe(("s2", "a"), 3, 1)
    assert {key for key, _ in t.take_dirty()} == {("s1", "a"), ("s2", "a")}
    assert t.take_dirty() == []
    t.observe(("s1", "a"), 2, 2)
    assert [key for key, _ in t.take_dirty()] == [("s1", "a")]
    assert t.lost == 1
