"""Drains the durable buffer into the time-series store: in order, in batches, retrying what can be."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path

from collector.inbox import DeadLetter, Inbox, truncated
from collector.stores.base import StoreRejected, StoreUnavailable, TimeSeriesStore
from ground.clock import now_ms

log = logging.getLogger(__name__)

BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 30.0
UNEXPECTED_ERROR_WAIT_S = 3.0


class Writer(threading.Thread):
    """Takes the oldest pending lines, writes them, and only then marks them stored.

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
        # Id of the last line stored; the buffer's owner deletes through it (see Inbox.append).
        self.stored_through = 0
        self.store_up = True

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
        rows = inbox.take(self._batch_size, after=self.stored_through)
        if rows and self._deliver(inbox, [line for _, line in rows]):
            self.stored_through = rows[-1][0]
            self.stored += len(rows)
        if len(rows) < self._batch_size:
            # A partial batch: let more arrive, up to the flush interval.
            self._wake.wait(self._flush_interval_s)
            self._wake.clear()

    def _deliver(self, inbox: Inbox, lines: Sequence[str]) -> bool:
        """Write `lines`, retrying while unavailable; False only if stopped before it succeeded."""
        attempt = 0
        while True:
            try:
                self._store.write(lines)
            except StoreRejected as exc:
                self._mark_up()
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
