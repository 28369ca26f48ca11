"""The durable buffer: lines survive a reopen, seq state is rebuilt exactly after a crash."""

from __future__ import annotations

from pathlib import Path

from collector.inbox import DeadLetter, Inbox, PendingLine
from collector.sequence import SeqTracker


def _lines(tracker: SeqTracker, device: str, seqs: range) -> list[PendingLine]:
    out = []
    for s in seqs:
        tracker.observe(("s1", device), s, 1000 + s)
        out.append(PendingLine(f"line {device} {s}", "s1", device, s, 1000 + s, True))
    return out


def test_seq_state_after_a_crash_is_the_checkpoint_plus_the_lines_after_it(tmp_path: Path) -> None:
    path = tmp_path / "inbox.db"
    inbox = Inbox(path)
    live = SeqTracker()
    inbox.append(_lines(live, "a", range(0, 10)), checkpoint=live.take_dirty())
    # Gaps and later lines, committed without a checkpoint, then the process dies.
    inbox.append(_lines(live, "a", range(12, 20)))
    inbox.append(_lines(live, "b", range(5, 8)))
    inbox.db.close()

    rebuilt = Inbox(path).load_tracker()
    assert rebuilt.devices == live.devices
    assert rebuilt.lost == 2


def test_stored_lines_are_dropped_only_up_to_the_checkpoint(tmp_path: Path) -> None:
    inbox = Inbox(tmp_path / "inbox.db")
    tracker = SeqTracker()
    inbox.append(_lines(tracker, "a", range(0, 5)), checkpoint=tracker.take_dirty())
    inbox.append(_lines(tracker, "a", range(5, 10)))
    inbox.append((), stored_through=10)  # all ten stored, but only five checkpointed
    assert [line for _, line in inbox.take(100)] == [f"line a {s}" for s in range(5, 10)]
    inbox.append((), stored_through=10, checkpoint=tracker.take_dirty())
    assert inbox.pending_count() == 0


def test_take_returns_lines_in_order_after_an_id(tmp_path: Path) -> None:
    inbox = Inbox(tmp_path / "inbox.db")
    inbox.append(_lines(SeqTracker(), "a", range(0, 6)))
    first = inbox.take(4)
    assert [line for _, line in first] == [f"line a {s}" for s in range(4)]
    rest = inbox.take(4, after=first[-1][0])
    assert [line for _, line in rest] == ["line a 4", "line a 5"]


def test_dead_letters_are_kept_newest_first(tmp_path: Path) -> None:
    inbox = Inbox(tmp_path / "inbox.db")
    inbox.add_dead_letters([DeadLetter(1, "decode", "t/1", "payload: not JSON", "x")])
    inbox.add_dead_letters([DeadLetter(2, "store", "", "HTTP 400: bad", "line")])
    assert [d["reason"] for d in inbox.dead_letters()] == ["HTTP 400: bad", "payload: not JSON"]
    assert inbox.dead_letter_count() == 2
