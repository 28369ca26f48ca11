"""The courier: a thread that sends the outbox's due notifications and settles each, until stopped.

Each notification is a POST of its JSON payload with an `Idempotency-Key` header (also in the
body), the same on every attempt: a delivery that arrived but whose answer was lost comes again
with the same key, and the receiver drops it. Any answer but 2xx, and any connection error, is a
failed attempt: due again after a backoff (doubling from FACILITY_OUTBOX_BACKOFF_S to
FACILITY_OUTBOX_BACKOFF_MAX_S), given up after FACILITY_OUTBOX_GIVE_UP_S, with a log line and
the state `failed` where the API and /metrics show it.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tickets.outbox import Claimed, Outbox, backoff_s

if TYPE_CHECKING:
    import urllib3

log = logging.getLogger(__name__)

BATCH = 20
IDLE_S = 1.0  # the longest it sleeps: rows another process wrote are seen this soon


@dataclass
class Timing:
    """How the courier waits and gives up."""

    backoff_s: float = 5.0
    backoff_max_s: float = 900.0
    give_up_s: float = 86_400.0
    timeout_s: float = 5.0


class Courier:
    """Sends due notifications on a thread of its own; `wake` when new ones were written."""

    def __init__(self, outbox: Outbox, timing: Timing) -> None:
        self.outbox = outbox
        self.timing = timing
        self._http: urllib3.PoolManager | None = None  # made at the first delivery
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.sent = 0
        self.attempts_failed = 0
        self.given_up = 0

    def start(self) -> None:
        """Start sending."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="courier", daemon=True)
        self._thread.start()

    def wake(self, *_: object) -> None:
        """Look for due notifications now (a ticket listener: its change may have written some)."""
        self._wake.set()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Finish the attempt in hand and stop; what is pending stays for the next start."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self.deliver_due() == BATCH
            except Exception:
                log.exception("the outbox could not be read; trying again shortly")
                busy = False
            if not busy:
                self._wake.wait(self._sleep_s())
            self._wake.clear()

    def _sleep_s(self) -> float:
        try:
            due = self.outbox.next_due()
        except Exception:
            return IDLE_S
        if due is None:
            return IDLE_S
        return min(IDLE_S, max(0.0, (due - self.outbox.clock()).total_seconds()))

    def deliver_due(self) -> int:
        """Claim the due notifications (up to a batch), try each once and settle it; how many were tried."""
        lease_s = self.timing.timeout_s * 2 + 30  # longer than an attempt can take
        claimed = self.outbox.claim(BATCH, lease_s)
        for n, item in enumerate(claimed):
            if self._stop.is_set():
                self.outbox.release(claimed[n:])  # due again at once, for the next start
                break
            self._attempt(item)
        return len(claimed)

    def _attempt(self, item: Claimed) -> None:
        error = self._post(item)
        if error is None:
            self.outbox.delivered(item)
            self.sent += 1
            return
        self.attempts_failed += 1
        wait = backoff_s(item.attempts, self.timing.backoff_s, self.timing.backoff_max_s)
        if self.outbox.failed(item, error, wait, self.timing.give_up_s):
            self.given_up += 1
            log.error(
                "notification %d to %s given up after %d attempts: %s",
                item.id,
                item.url,
                item.attempts,
                error,
            )
        else:
            log.warning(
                "notification %d to %s: attempt %d failed: %s", item.id, item.url, item.attempts, error
            )

    def _pool(self) -> urllib3.PoolManager:
        """The HTTP connections, made when first needed: a site without webhooks never imports urllib3."""
        import urllib3

        if self._http is None:
            self._http = urllib3.PoolManager(
                # No retries of its own (the outbox retries), and a redirect is an answer like any other.
                timeout=urllib3.Timeout(total=self.timing.timeout_s),
                retries=False,
            )
        return self._http

    def _post(self, item: Claimed) -> str | None:
        """One attempt; None when it arrived, else what went wrong."""
        import urllib3

        try:
            resp = self._pool().request(
                "POST",
                item.url,
                body=json.dumps(item.payload).encode(),
                headers={"Content-Type": "application/json", "Idempotency-Key": item.idempotency_key},
            )
        except urllib3.exceptions.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"
        if 200 <= resp.status < 300:
            return None
        return f"answered {resp.status}"

    def counters(self) -> dict[str, float]:
        """This process's attempts, for /metrics and /health."""
        return {
            "notifications_sent_total": self.sent,
            "notification_attempts_failed_total": self.attempts_failed,
            "notifications_given_up_total": self.given_up,
        }
