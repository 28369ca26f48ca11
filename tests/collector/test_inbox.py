"""The durable buffer: lines survive a reopen, seq state is rebuilt exactly after a crash."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from collector.inbox import DeadLetter, Inbox
from collector.sequence import SeqTracker


def _lines(tracker: SeqTracker, device: str, seqs: range) -> list[str]:
    out = []
    for s in seqs:
        tracker.observe(("s1", device), s, 1000 + s)
        out.append(f"water_tank,site=s1,device_id={device} level_pct=50.0,seq={s}i {1000 + s}")
    return out


def test_seq_state_after_a_crash_is_the_checkpoint_plus_the_lines_after_it(tmp_path: Path) -> None:
    path = tmp_path / "inbox.db"
    inbox = Inbox(path)
    live = SeqTracker()
    inbox.append(_lines(live, "a", range(0, 10)), checkpoint=live.take_dirty())
    # Gaps and later lines, committed without a checkpoint, then the process dies.
    inbox.append(_lines(live, "a", range(12, 20)))
    inbox.append(_lines(live, "b", range(5, 8)))
    inbox.append(
        ['events,site=s1,device_id=a,device_type=elevator,code=X state="raised",seq=3i 5'], derived=True
    )
    inbox.db.close()

    rebuilt = Inbox(path).load_tracker()
    assert rebuilt.devices == live.devices
    assert rebuilt.lost == 2


def test_stored_lines_are_dropped_only_up_to_the_checkpoint(tmp_path: Path) -> None:
    inbox = Inbox(tmp_path / "inbox.db")
    tracker = SeqTracker()
    first = inbox.append(_lines(tracker, "a", range(0, 5)), checkpoint=tracker.take_dirty())
    second = inbox.append(_lines(tracker, "a", range(5, 10)))
    assert second == (first or 0) + 1
    inbox.append((), stored_through=2)  # both batches stored, but only the first checkpointed
    assert [lines for _, lines in inbox.take(100)] == [_lines(SeqTracker(), "a", range(5, 10))]
    assert inbox.pending_count() == 5
    inbox.append((), stored_through=2, checkpoint=tracker.take_dirty())
    assert inbox.pending_count() == 0
    assert Inbox(tmp_path / "inbox.db").stored_before() == 2


def test_take_returns_whole_batches_in_order_after_an_id(tmp_path: Path) -> None:
    inbox = Inbox(tmp_path / "inbox.db")
    tracker = SeqTracker()
    batches = [inbox.append(_lines(tracker, "a", range(n, n + 3))) for n in (0, 3, 6)]
    assert inbox.stored_before() == 0
    first = inbox.take(4)  # two batches hold the four lines asked for
    assert [batch for batch, _ in first] == batches[:2]
    rest = inbox.take(4, after=first[-1][0])
    assert rest == [(batches[2], _lines(SeqTracker(), "a", range(6, 9)))]


def test_a_spool_of_line_rows_is_moved_into_one_batch_with_its_seq_state(tmp_path: Path) -> None:
    path = tmp_path / "inbox.db"
    old = sqlite3.connect(path)
    old.executescript(
        "CREATE TABLE pending (id INTEGER PRIMARY KEY AUTOINCREMENT, line TEXT NOT NULL, site TEXT NOT NULL,"
        " device_id TEXT NOT NULL, seq INTEGER, ts INTEGER NOT NULL, ts_given INTEGER NOT NULL);"
        "CREATE TABLE checkpoint (name TEXT PRIMARY KEY, value INTEGER NOT NULL);"
        "INSERT INTO checkpoint VALUES ('seq', 0);"
    )
    old.executemany(
        "INSERT INTO pending (line, site, device_id, seq, ts, ts_given) VALUES (?, ?, ?, ?, ?, ?)",
        [(f"m,site=s1,device_id=a v=1.0,seq={s}i {1000 + s}", "s1", "a", s, 1000 + s, 1) for s in (1, 2, 4)],
    )
    old.commit()
    old.close()

    inbox = Inbox(path)
    assert inbox.pending_count() == 3
    [(_, lines)] = inbox.take(10)
    assert lines == [f"m,site=s1,device_id=a v=1.0,seq={s}i {1000 + s}" for s in (1, 2, 4)]
    state = inbox.load_tracker().devices[("s1", "a")]
    assert (state.high, state.lost, state.missing) == (4, 1, {3})


def test_dead_letters_are_kept_newest_first(tmp_path: Path) -> None:
    inbox = Inbox(tmp_path / "inbox.db")
    inbox.add_dead_letters([DeadLetter(1, "decode", "t/1", "payload: not JSON", "x")])
    inbox.add_dead_letters([DeadLetter(2, "store", "", "HTTP 400: bad", "line")])
    assert [d["reason"] for d in inbox.dead_letters()] == ["HTTP 400: bad", "payload: not JSON"]
    assert inbox.dead_letter_count() == 2
