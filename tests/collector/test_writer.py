"""The writer thread: it outlives any error, and a store outage only delays the lines."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from collector import writer as writer_module
from collector.inbox import Inbox
from collector.stores.base import StoreRejected, StoreUnavailable, each_line
from collector.writer import Writer
from tests.conftest import wait_until


class FlakyStore:
    """A store that fails in the ways given, then works; a stand-in for a broken store, by design."""

    def __init__(self, failures: list[Exception]) -> None:
        self.failures = failures
        self.written: list[str] = []

    def write(self, lines: Sequence[str]) -> None:
        if self.failures:
            raise self.failures.pop(0)
        self.written += each_line(lines)

    def query(self, *args: Any, **kwargs: Any) -> list[tuple[int, Any]]:
        return []

    def close(self) -> None:
        pass


def _inbox_with(path: Path, n: int) -> None:
    inbox = Inbox(path)
    for i in range(n):
        inbox.append([f"m,site=s,device_id=d v=1 {i}"])
    inbox.close()


@pytest.mark.parametrize(
    "failure",
    [RuntimeError("a bug in a store"), OSError("disk trouble"), StoreUnavailable("HTTP 503")],
)
def test_the_writer_survives_any_error_and_delivers_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: Exception
) -> None:
    monkeypatch.setattr(writer_module, "UNEXPECTED_ERROR_WAIT_S", 0.05)
    monkeypatch.setattr(writer_module, "BACKOFF_FIRST_S", 0.05)
    path = tmp_path / "inbox.db"
    _inbox_with(path, 10)
    store = FlakyStore([failure, failure])
    w = Writer(path, store, batch_size=4, flush_interval_s=0.05)
    w.start()
    try:
        wait_until(lambda: len(store.written) == 10, timeout_s=10, what="every line written")
        assert w.is_alive() and w.store_up
        assert store.written == [f"m,site=s,device_id=d v=1 {i}" for i in range(10)]
        assert w.stored_through == 10
    finally:
        w.stop()


def test_handed_batches_are_written_from_memory_and_one_not_handed_is_read_from_the_buffer(
    tmp_path: Path,
) -> None:
    path = tmp_path / "inbox.db"
    inbox = Inbox(path)
    store = FlakyStore([])
    # A write takes up to ten lines: batch 3 must not be taken with batch 1 over the missing 2.
    w = Writer(path, store, batch_size=10, flush_interval_s=0.05)

    def commit(n: int, handed: bool) -> None:
        batch = inbox.append([f"m,site=s,device_id=d v={n} {n}"])
        assert batch == n
        if handed:  # what was handed differs from the buffer only so the test sees which was written
            w.hand(n, [f"m,site=s,device_id=d v={n}0 {n}"])

    commit(1, True)
    commit(2, False)  # not handed, as when the writer's queue is full
    commit(3, True)
    w.start()
    try:
        wait_until(lambda: len(store.written) == 3, timeout_s=10, what="three batches written")
        # 1 from memory; then 2 and 3 read back from the buffer together, in order.
        assert store.written == [
            "m,site=s,device_id=d v=10 1",
            "m,site=s,device_id=d v=2 2",
            "m,site=s,device_id=d v=3 3",
        ]
        commit(4, True)
        wait_until(lambda: len(store.written) == 4, timeout_s=10, what="the fourth batch written")
        assert store.written[3] == "m,site=s,device_id=d v=40 4"  # from memory again
        assert w.stored_through == 4
    finally:
        w.stop()
        inbox.close()


class PickyStore(FlakyStore):
    """Refuses a whole write holding a line with `bad` in it, as InfluxDB refuses a batch with a bad point."""

    def write(self, lines: Sequence[str]) -> None:
        each = list(each_line(lines))
        if any("bad" in line for line in each):
            raise StoreRejected("unable to parse 'bad'")
        self.written += each


def test_a_bad_line_in_batches_handed_whole_is_dead_lettered_alone(tmp_path: Path) -> None:
    path = tmp_path / "inbox.db"
    inbox = Inbox(path)
    store = PickyStore([])
    w = Writer(path, store, batch_size=100, flush_interval_s=0.05)
    batches = [
        [f"m,site=s,device_id=d v={n} {n}" for n in range(0, 5)],
        [f"m,site=s,device_id=d v={n} {n}" for n in range(5, 8)] + ["m,site=s,device_id=d bad"],
        [f"m,site=s,device_id=d v={n} {n}" for n in range(8, 12)],
    ]
    for lines in batches:
        w.hand(inbox.append(lines) or 0, lines)
    w.start()
    try:
        wait_until(lambda: w.stored_through == 3, timeout_s=10, what="all three batches through")
        assert store.written == [f"m,site=s,device_id=d v={n} {n}" for n in range(12)]
        assert w.rejected == 1 and w.stored == 13
        [letter] = inbox.dead_letters()
        assert letter["stage"] == "store" and letter["payload"] == "m,site=s,device_id=d bad"
    finally:
        w.stop()
        inbox.close()
