"""Drains the durable buffer into the time-series store: in order, in batches, retrying what can be."""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Sequence
from pathlib import Path

from collector.inbox import DeadLetter, Inbox, truncated
from collector.stores.base import StoreRejected, StoreUnavailable, TimeSeriesStore, each_line
from ground.clock import now_ms

log = logging.getLogger(__name__)

BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 30.0
UNEXPECTED_ERROR_WAIT_S = 3.0
# Lines handed over in memory at most; past it, batches wait on disk only and are read back from there.
HANDED_MAX_LINES = 10_000


class Writer(threading.Thread):
    """Takes the oldest pending lines, writes them, and only then marks them stored.

    The collector hands over each batch it committed (`hand`), so the writer need not read back
    what was just written; the buffer on disk stays the truth. A handed batch is used only when its
    id follows the last one stored, so a batch that was not handed (the queue was full, or it was
    in the buffer from an earlier run) sends the writer to the disk until it has caught up.
    A full batch is taken at once; a partial one waits up to `flush_interval_s`, so lines are
    batched by size and by age. While the store is unavailable the lines stay on disk in the
    buffer (the spool) and the same batch is retried with backoff; a batch the store rejects as
    bad is split in halves until the bad lines are found and dead-lettered, and the rest stored.
    """

    def __init__(
        self,
        inbox_path: Path,
        store: TimeSeriesStore,
        batch_size: int = 5000,
        flush_interval_s: float = 0.5,
    ) -> None:
        super().__init__(name="ts-writer", daemon=True)
        self._inbox_path = inbox_path
        self._store = store
        self._batch_size = batch_size
        self._flush_interval_s = flush_interval_s
        self._stop_event = threading.Event()
        self._wake = threading.Event()
        self._unseen = 0  # lines committed since the last take; a hint, so no lock
        self.stored = 0
        self.rejected = 0
        # Id of the last batch stored; the buffer's owner deletes through it (see Inbox.append).
        spool = Inbox(inbox_path)
        self.stored_through = spool.stored_before()
        self.committed_through = spool.last_batch()  # the newest batch committed, as far as we know
        spool.close()
        self.store_up = True
        # (batch id, its lines joined by newlines, how many): one string a batch rather than a
        # thousand, since small objects held between two threads spread over the allocator's
        # arenas, and those stay with the process after a drain.
        self._handed: collections.deque[tuple[int, str, int]] = collections.deque()
        self._handed_lines = 0
        self._handed_lock = threading.Lock()  # the count is changed by both threads

    def hand(self, batch: int, lines: Sequence[str]) -> None:
        """Batch `batch` of `lines` was committed: keep it in memory for the write, if there is room."""
        self.committed_through = batch
        count = len(lines)
        if self._handed_lines + count <= HANDED_MAX_LINES:  # a hint here; decided under the lock
            text = "\n".join(lines)
            with self._handed_lock:
                if self._handed_lines + count <= HANDED_MAX_LINES:
                    self._handed_lines += count
                    self._handed.append((batch, text, count))
        self.notify(count)

    def notify(self, lines: int) -> None:
        """`lines` new lines were committed; wake the writer early once they fill a batch."""
        self._unseen += lines
        if self._unseen >= self._batch_size:
            self._wake.set()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Finish the batch in hand and stop; what is left stays in the buffer for next time."""
        self._stop_event.set()
        self._wake.set()
        self.join(timeout_s)

    def run(self) -> None:
        """Drain until stopped; an unexpected error is logged and retried, never the end of the thread."""
        inbox = Inbox(self._inbox_path)
        try:
            while not self._stop_event.is_set():
                try:
                    self._drain_once(inbox)
                except Exception:
                    log.exception("time-series writer failed; retrying in %.0f s", UNEXPECTED_ERROR_WAIT_S)
                    self.store_up = False
                    self._stop_event.wait(UNEXPECTED_ERROR_WAIT_S)
        finally:
            inbox.close()

    def _drain_once(self, inbox: Inbox) -> None:
        self._unseen = 0
        batches = self._take_handed()
        if batches is None:
            batches = [
                (batch, "\n".join(lines), len(lines))
                for batch, lines in inbox.take(self._batch_size, after=self.stored_through)
            ]
        count = sum(n for _, _, n in batches)
        if count and self._deliver(inbox, [text for _, text, _ in batches]):
            self.stored_through = batches[-1][0]
            self.stored += count
        if count < self._batch_size:
            # A partial batch: let more arrive, up to the flush interval.
            self._wake.wait(self._flush_interval_s)
            self._wake.clear()

    def _take_handed(self) -> list[tuple[int, str, int]] | None:
        """Handed batches that follow the last one stored, up to a write's worth; None: read the disk."""
        handed = self._handed
        with self._handed_lock:
            while handed and handed[0][0] <= self.stored_through:
                self._handed_lines -= handed.popleft()[2]  # read from the disk meanwhile
            if not handed:
                # Nothing in memory: fine if nothing waits, else a batch was not handed.
                return [] if self.committed_through <= self.stored_through else None
            expected = self.stored_through + 1
            if handed[0][0] != expected:
                return None
            batches: list[tuple[int, str, int]] = []
            count = 0
            # Only consecutive batches: one missing in between (not handed, the queue full) ends
            # the write there, and the next write reads it from the disk.
            while handed and count < self._batch_size and handed[0][0] == expected:
                batch = handed.popleft()
                self._handed_lines -= batch[2]
                batches.append(batch)
                count += batch[2]
                expected += 1
        return batches

    def _deliver(self, inbox: Inbox, lines: Sequence[str]) -> bool:
        """Write `lines` (each one or more lines), retrying while unavailable; False only if stopped first."""
        attempt = 0
        while True:
            try:
                self._store.write(lines)
            except StoreRejected as exc:
                self._mark_up()
                # One line at a time from here, so that halving finds the bad ones.
                lines = list(each_line(lines))
                if len(lines) == 1:
                    self.rejected += 1
                    log.warning("store rejected a point: %s", exc)
                    measurement = lines[0].split(",", 1)[0]
                    letter = DeadLetter(now_ms(), "store", measurement, str(exc)[:500], truncated(lines[0]))
                    inbox.add_dead_letters([letter])
                    return True
                half = len(lines) // 2
                return self._deliver(inbox, lines[:half]) and self._deliver(inbox, lines[half:])
            except StoreUnavailable as exc:
                if self.store_up:
                    log.warning("store unavailable, spooling to disk and retrying: %s", exc)
                self.store_up = False
                delay = min(BACKOFF_FIRST_S * 2**attempt, BACKOFF_MAX_S)
                attempt += 1
                if self._stop_event.wait(delay):
                    return False
            else:
                self._mark_up()
                return True

    def _mark_up(self) -> None:
        if not self.store_up:
            log.info("store reachable again, draining the spool")
        self.store_up = True
