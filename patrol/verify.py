"""Verify on site: an alarm in a place a round in progress passes adds a stop there, and the guard's
scan (with a finding or without) goes on the alarm's ticket.

A round is in progress from its first counted scan (`started_at`) until it ends (`ended_at`). The
stop is at the round's checkpoint whose location is the alarm device's (or the ticket's), else one
on the same floor of the same building. It is extra: the round's evaluation never sees it, so it
can make a round neither late nor missed. It is served by the first scan at its checkpoint from
the time it was added (less `SKEW`, readers' clocks differ) until the round's window ends: the
ticket gets an audit entry `verified` saying "checked, nothing found"; a finding there (before the
scan, or up to `FINDING_AFTER` after it) says what was found instead, and goes to that ticket rather
than opening one of its own. A verifying scan away from the due time of the round's own stop at
that checkpoint is a detour: kept as `verified`, it does not count for the round, whose stops are
judged as if it had not happened (no early stop, no wrong order).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from patrol.evaluation import Timing
from patrol.outcomes import ReaderCode, ReaderEvent, ScanOutcome
from patrol.places import AlarmPlace, nearest
from records.db import Database
from records.models import Device, PatrolCheckpoint, PatrolRound, PatrolScan, PatrolVerifyStop, Ticket
from records.states import Source
from tickets.changes import ChangeKind, TicketChange
from tickets.onsite import NOTHING_FOUND, note_verified
from tickets.service import TicketService

log = logging.getLogger(__name__)

SKEW = timedelta(minutes=1)  # a reader's clock may be this far behind the service's
FINDING_AFTER = timedelta(minutes=10)  # a finding this soon after the stop's scan is what it found
# Alarms about a device rather than a place: nothing for a guard to look at.
NOT_A_PLACE = frozenset({"offline"})


class VerifyStops:
    """Adds verify stops to rounds in progress, and serves them with the guards' scans."""

    def __init__(
        self, db: Database, tickets: TicketService, timing: Timing, clock: Callable[[], datetime]
    ) -> None:
        self.db = db
        self.tickets = tickets
        self.timing = timing
        self.clock = clock

    def on_ticket_change(self, change: TicketChange) -> None:
        """Ticket listener: an alarm's ticket opened or reopened asks the rounds passing its place to look."""
        if change.kind not in (ChangeKind.OPENED, ChangeKind.REOPENED):
            return
        if change.source != Source.ALARM or change.device_id is None:
            return
        try:
            self.add(change.ticket_id)
        except IntegrityError:
            log.debug("verify stop for ticket %d added by another worker", change.ticket_id)

    def add(self, ticket_id: int) -> list[int]:
        """Add a verify stop for the ticket's alarm to each round in progress passing its place; their ids."""
        with self.db.session() as s:
            ticket = s.get(Ticket, ticket_id)
            if ticket is None or ticket.device_id is None or ticket.rule in NOT_A_PLACE:
                return []
            device = s.scalars(
                select(Device).where(Device.site == ticket.site, Device.device_id == ticket.device_id)
            ).one_or_none()
            place = AlarmPlace(
                building=device.building if device else None,
                floor=device.floor if device else None,
                location=device.location if device else None,
                ticket_location=ticket.location,
            )
            rounds = s.scalars(
                select(PatrolRound)
                .options(selectinload(PatrolRound.visits))
                .where(
                    PatrolRound.site == ticket.site,
                    PatrolRound.started_at.is_not(None),
                    PatrolRound.ended_at.is_(None),
                )
            ).all()
            if not rounds:
                return []
            checkpoints = {
                c.id: c
                for c in s.scalars(select(PatrolCheckpoint).where(PatrolCheckpoint.site == ticket.site))
            }
            added: list[PatrolVerifyStop] = []
            for r in rounds:
                if any(v.ticket_id == ticket_id for v in r.verify_stops):
                    continue  # reopened: the round looks once
                route = [checkpoints[v.checkpoint_id] for v in r.visits if v.checkpoint_id in checkpoints]
                cp = nearest(place, route)
                if cp is None:
                    continue
                stop = PatrolVerifyStop(
                    round_id=r.id,
                    site=r.site,
                    checkpoint_id=cp.id,
                    ticket_id=ticket_id,
                    device_id=ticket.device_id,
                    added_at=self.clock(),
                )
                s.add(stop)
                added.append(stop)
            s.flush()
            return [stop.id for stop in added]

    def serve(self, event: ReaderEvent, scan_id: int, checkpoint_id: str | None) -> bool:
        """Serve the verify stops at the checkpoint with a scan or finding; whether a finding was filed."""
        if checkpoint_id is None:
            return False
        with self.db.session() as s:
            stops = s.scalars(
                select(PatrolVerifyStop)
                .join(PatrolRound, PatrolRound.id == PatrolVerifyStop.round_id)
                .where(
                    PatrolVerifyStop.site == event.site,
                    PatrolVerifyStop.checkpoint_id == checkpoint_id,
                    PatrolVerifyStop.added_at <= event.at + SKEW,
                    PatrolRound.window_end >= event.at,
                )
                .order_by(PatrolVerifyStop.id)
            ).all()
            if event.code is ReaderCode.FINDING:
                return self._found(s, event, scan_id, stops)
            served = [stop for stop in stops if stop.scanned_at is None]
            for stop in served:
                self._verified(s, stop, event, NOTHING_FOUND)
            if served and not any(self._on_time(stop.round, checkpoint_id, event.at) for stop in served):
                scan = s.get(PatrolScan, scan_id)
                if scan is not None:
                    scan.outcome = ScanOutcome.VERIFIED.value
            return False

    def _on_time(self, r: PatrolRound, checkpoint_id: str, at: datetime) -> bool:
        """Whether a scan at `at` is on time for the round's own stop at the checkpoint."""
        tolerance = timedelta(seconds=self.timing.tolerance_s)
        return any(v.checkpoint_id == checkpoint_id and abs(at - v.due) <= tolerance for v in r.visits)

    def _found(self, s: Session, event: ReaderEvent, scan_id: int, stops: Sequence[PatrolVerifyStop]) -> bool:
        text = str(event.detail.get("text") or "finding without text")
        filed = False
        for stop in stops:
            if stop.finding_scan_id == scan_id:
                filed = True  # this finding again (a retry): its ticket has it
            elif stop.finding_scan_id is None and (
                stop.scanned_at is None or event.at - stop.scanned_at <= FINDING_AFTER
            ):
                stop.finding, stop.finding_scan_id = text, scan_id
                self._verified(s, stop, event, text)
                filed = True
        return filed

    def _verified(self, s: Session, stop: PatrolVerifyStop, event: ReaderEvent, result: str) -> None:
        if stop.scanned_at is None:
            stop.scanned_at, stop.scanned_by = event.at, event.guard or event.reader
        detail: dict[str, Any] = {
            "result": result,
            "found": result != NOTHING_FOUND,
            "checkpoint": stop.checkpoint_id,
            "round": stop.round_id,
            "reader": event.reader,
            "at": event.at.isoformat(),
        }
        note_verified(self.tickets, s, stop.ticket_id, event.guard or event.reader, detail)
