"""Scans and findings from the readers' messages: kept as sent, matched to rounds, findings to tickets.

Every scan and finding is kept (`patrol_scans`, unique by site, reader, time, tag and event code,
so a redelivery does nothing). A scan by a guard of a round whose window holds it has the round
judged again; a finding is marked done only once its ticket exists, so a failure is retried. A
scan the database refused is queued and tried again by the timer.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, selectinload

from ground.contract import Message
from ground.events import AlarmEvent
from patrol import alarms
from patrol.evaluation import Timing
from patrol.findings import Finding, file_finding
from patrol.outcomes import ReaderCode, ReaderEvent, ScanOutcome
from patrol.verify import VerifyStops
from patrol.whereabouts import is_sos, locate
from records.db import Database
from records.models import PatrolCheckpoint, PatrolRound, PatrolScan
from tickets.service import TicketService

log = logging.getLogger(__name__)

RETRIES = 10  # a scan the database refused is tried again this many times, a second apart
# Reader times outside these are a broken clock: the scan is kept but matches no round.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


class Refused(NamedTuple):
    """A scan or finding the database refused, and how often it has been tried again."""

    event: ReaderEvent
    attempt: int


class Kept(NamedTuple):
    """A kept scan or finding, and what it concerns."""

    scan_id: int
    checkpoint_id: str | None
    location: str | None
    round_ids: list[int]  # the rounds of the scanning guard whose window holds it


class Intake:
    """Takes the readers' scans and findings into the records."""

    def __init__(
        self,
        db: Database,
        tickets: TicketService,
        timing: Timing,
        clock: Callable[[], datetime],
        emit: Callable[[list[AlarmEvent]], None],
        judge: Callable[[Sequence[int]], None],
        lock: threading.RLock,
        verify: VerifyStops | None = None,
    ) -> None:
        self.db = db
        self.verify = verify  # verify stops, served by the scans at their checkpoints
        self.tickets = tickets
        self.timing = timing
        self.clock = clock
        self.emit = emit
        self.judge = judge  # judges rounds again from their scans
        self._lock = lock
        self._refused: collections.deque[Refused] = collections.deque()

    @property
    def waiting(self) -> int:
        """How many refused scans and findings wait to be tried again."""
        return len(self._refused)

    def handle(self, messages: Sequence[Message]) -> None:
        """Collector handler: the patrol readers' scans and findings."""
        for m in messages:
            event = ReaderEvent.of(m)
            if event is not None:
                self.apply(event)
            elif is_sos(m):
                self.locate(m)

    def locate(self, m: Message) -> None:
        """Put where an SOS's guard was last seen on its ticket; a failure never stops the caller."""
        try:
            locate(self.db, self.tickets, m)
        except Exception:
            log.exception("could not locate the SOS of %s/%s", m.site, m.device_id)

    def apply(self, event: ReaderEvent, attempt: int = 0) -> None:
        """Keep and apply one scan or finding; bad input or a failing database never stops the caller."""
        try:
            self.keep(event)
        except OperationalError:
            # The database is locked or down: the timer tries again, a few times.
            if attempt < RETRIES:
                log.warning("could not record %s; will retry", event)
                self._refused.append(Refused(event, attempt + 1))
            else:
                log.exception("gave up recording %s", event)
        except Exception:
            log.exception("could not record %s", event)

    def retry(self) -> None:
        """Timer: try again the scans and findings the database refused (once each)."""
        for _ in range(len(self._refused)):
            self.apply(*self._refused.popleft())

    def keep(self, event: ReaderEvent) -> None:
        """Keep one scan or finding and apply it: a round judged again, a ticket, routine alarms."""
        events: list[AlarmEvent] = []
        with self._lock:
            kept = self._record(event, events)
            if kept is None:
                return  # the same event again (a redelivery): already applied
            verifies = self._verify(event, kept)
            if event.code is ReaderCode.FINDING:
                # The ticket first, then the mark: a finding whose ticket failed is tried again.
                round_id = kept.round_ids[0] if kept.round_ids else None
                if not verifies:  # a finding at a verify stop is on the alarm's ticket already
                    file_finding(self.tickets, Finding(event, kept.checkpoint_id, kept.location, round_id))
                with self.db.session() as s:
                    row = s.get(PatrolScan, kept.scan_id)
                    assert row is not None
                    row.outcome = ScanOutcome.FINDING.value
            elif kept.round_ids:
                self.judge(kept.round_ids)
        if events:
            self.emit(events)

    def _verify(self, event: ReaderEvent, kept: Kept) -> bool:
        """Serve the verify stops at the scan's checkpoint; whether a finding went to an alarm's ticket.

        A failure here is logged and passed over: the scan is kept already, and its round must
        still be judged (a finding then opens its own ticket).
        """
        if self.verify is None:
            return False
        try:
            return self.verify.serve(event, kept.scan_id, kept.checkpoint_id)
        except Exception:
            log.exception("could not serve the verify stops at %s with %s", kept.checkpoint_id, event)
            return False

    def _record(self, event: ReaderEvent, events: list[AlarmEvent]) -> Kept | None:
        """Write the scan down with its outcome; None when it was applied already."""
        with self.db.session() as s:
            again = s.scalars(
                select(PatrolScan).where(
                    PatrolScan.site == event.site,
                    PatrolScan.reader == event.reader,
                    PatrolScan.ts == event.at,
                    PatrolScan.tag == event.tag,
                    PatrolScan.code == event.code.value,
                )
            ).first()
            if again is not None and again.outcome != ScanOutcome.FINDING_PENDING:
                return None
            cp = s.scalars(
                select(PatrolCheckpoint).where(
                    PatrolCheckpoint.site == event.site, PatrolCheckpoint.tag == event.tag
                )
            ).one_or_none()
            candidates = self._rounds_at(s, event.site, event.at, cp.id if cp else None)
            mine = [r for r in candidates if event.guard in r.guards]
            if again is None:
                outcome = self._outcome(s, event, cp, candidates, mine, events)
                again = PatrolScan(
                    site=event.site,
                    reader=event.reader,
                    code=event.code.value,
                    tag=event.tag,
                    guard=event.guard,
                    ts=event.at,
                    received_at=self.clock(),
                    checkpoint_id=cp.id if cp else None,
                    round_id=mine[0].id if mine else None,
                    outcome=outcome.value,
                )
                s.add(again)
                s.flush()
            return Kept(again.id, cp.id if cp else None, cp.location if cp else None, [r.id for r in mine])

    def _outcome(
        self,
        s: Session,
        event: ReaderEvent,
        cp: PatrolCheckpoint | None,
        candidates: Sequence[PatrolRound],
        mine: Sequence[PatrolRound],
        events: list[AlarmEvent],
    ) -> ScanOutcome:
        """What a new scan or finding comes to; a scan's routine alarms are added to `events`."""
        if event.code is ReaderCode.FINDING:
            return ScanOutcome.FINDING_PENDING
        if cp is None:
            # Only where patrols are set up: a site with no checkpoints knows no tags.
            if s.scalars(select(PatrolCheckpoint.id).where(PatrolCheckpoint.site == event.site)).first():
                events.append(alarms.unknown_tag(event))
            return ScanOutcome.UNKNOWN_TAG
        if candidates and not mine:
            events.append(alarms.guard_not_on_round(candidates[0], event))
            return ScanOutcome.GUARD_NOT_ON_ROUND
        if not candidates:
            return ScanOutcome.NO_ROUND
        return ScanOutcome.COUNTED

    def _rounds_at(self, s: Session, site: str, at: datetime, checkpoint_id: str | None) -> list[PatrolRound]:
        """Rounds of the site whose window holds `at` and whose route passes the checkpoint."""
        if checkpoint_id is None or not EARLIEST < at < LATEST:
            return []
        early = timedelta(seconds=self.timing.early_window_s)
        found = s.scalars(
            select(PatrolRound)
            .options(selectinload(PatrolRound.visits))
            .where(PatrolRound.site == site, PatrolRound.window_end >= at, PatrolRound.start <= at + early)
            .order_by(PatrolRound.start)
        ).all()
        return [r for r in found if any(v.checkpoint_id == checkpoint_id for v in r.visits)]
