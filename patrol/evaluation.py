"""How a round went, from its plan and its scans: pure, so a late upload simply evaluates again.

Scans are judged by the reader's clock (when the tag was read), deadlines by the wall clock `now`.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from records.states import RoundStatus as RoundStatus
from records.states import VisitStatus as VisitStatus

ENDED = (RoundStatus.COMPLETED, RoundStatus.INCOMPLETE)


@dataclass(frozen=True)
class Timing:
    """The tolerances of the evaluation (domain catalogue §5.3 and §5.4)."""

    tolerance_s: float = 300  # on time within ± this of the due time
    grace_s: float = 900  # missed when not scanned this long after the due time
    start_grace_s: float = 900  # not started when nothing was scanned this long after the start
    repeat_s: float = 60  # a tag read again within this counts once
    early_window_s: float = 600  # scans this long before the start still count for the round
    # A round entered after its deadlines (walked with an offline reader) waits this long, at
    # most its grace, for the reader's upload before anything counts as missed.
    settle_s: float = 10


@dataclass(frozen=True)
class Stop:
    """A checkpoint of the round and when it is due."""

    checkpoint: str
    due: datetime


@dataclass(frozen=True)
class Scan:
    """A tag read at a checkpoint, by the reader's clock."""

    checkpoint: str
    at: datetime
    guard: str | None


@dataclass(frozen=True)
class Visit:
    """One stop's outcome."""

    status: VisitStatus
    scanned_at: datetime | None = None
    scanned_by: str | None = None
    offset_s: float | None = None  # scan time minus due time


@dataclass(frozen=True)
class Evaluation:
    """A round's outcome at `now`."""

    visits: list[Visit]
    status: RoundStatus
    started_at: datetime | None
    not_started: bool  # nothing scanned by the start plus its grace
    next_deadline: datetime | None  # when something falls due next; None once the round ended


def window_end(stops: Sequence[Stop], start: datetime, timing: Timing) -> datetime:
    """The last scan time that can still count for the round."""
    last = max((s.due for s in stops), default=start)
    return last + timedelta(seconds=timing.grace_s)


def counted(scans: Sequence[Scan], timing: Timing) -> list[Scan]:
    """Scans in time order, a tag read again within `repeat_s` of its last counted read dropped."""
    kept: list[Scan] = []
    last: dict[str, datetime] = {}
    for scan in sorted(scans, key=lambda s: s.at):
        previous = last.get(scan.checkpoint)
        if previous is not None and (scan.at - previous).total_seconds() < timing.repeat_s:
            continue
        last[scan.checkpoint] = scan.at
        kept.append(scan)
    return kept


def in_order(positions: Sequence[int]) -> set[int]:
    """The positions of the longest run walked in route order; the others were out of order."""
    tails: list[int] = []  # tails[k]: smallest last position of an increasing run of length k+1
    tail_at: list[int] = []  # index in `positions` of that tail
    parent = [-1] * len(positions)
    for i, p in enumerate(positions):
        k = bisect.bisect_left(tails, p)
        if k == len(tails):
            tails.append(p)
            tail_at.append(i)
        else:
            tails[k], tail_at[k] = p, i
        parent[i] = tail_at[k - 1] if k else -1
    keep: set[int] = set()
    i = tail_at[-1] if tail_at else -1
    while i >= 0:
        keep.add(positions[i])
        i = parent[i]
    return keep


def evaluate(
    start: datetime,
    stops: Sequence[Stop],
    scans: Sequence[Scan],
    now: datetime,
    timing: Timing,
    entered: datetime | None = None,
) -> Evaluation:
    """Each stop's status, the round's status and its next deadline.

    `entered` is when the round was created: no deadline falls before it plus the settling time.
    """
    settled = entered + timedelta(seconds=min(timing.settle_s, timing.grace_s)) if entered else start
    earliest = start - timedelta(seconds=timing.early_window_s)
    latest = window_end(stops, start, timing)
    grace = timedelta(seconds=timing.grace_s)
    matched: dict[int, Scan] = {}
    walked: list[int] = []  # positions in the order they were scanned
    for scan in counted([s for s in scans if earliest <= s.at <= latest], timing):
        # A scan after a stop's miss deadline is not that stop's (it may be the next round's);
        # a route may pass one checkpoint twice: the scan serves the open stop due nearest to it.
        open_stops = [
            i
            for i, stop in enumerate(stops)
            if stop.checkpoint == scan.checkpoint and i not in matched and scan.at <= stop.due + grace
        ]
        position = min(open_stops, key=lambda i: abs((scan.at - stops[i].due).total_seconds()), default=None)
        if position is not None:
            matched[position] = scan
            walked.append(position)
    ordered = in_order(walked)
    visits: list[Visit] = []
    deadlines: list[datetime] = []
    for i, stop in enumerate(stops):
        hit = matched.get(i)
        if hit is None:
            missed_at = max(stop.due + timedelta(seconds=timing.grace_s), settled)
            if now >= missed_at:
                visits.append(Visit(VisitStatus.MISSED))
            else:
                visits.append(Visit(VisitStatus.PENDING))
                deadlines.append(missed_at)
            continue
        offset = (hit.at - stop.due).total_seconds()
        if i not in ordered:
            judged = VisitStatus.WRONG_ORDER
        elif offset < -timing.tolerance_s:
            judged = VisitStatus.EARLY
        elif offset > timing.tolerance_s:
            judged = VisitStatus.LATE
        else:
            judged = VisitStatus.ON_TIME
        visits.append(Visit(judged, hit.at, hit.guard, offset))
    started_at = min((s.at for s in matched.values()), default=None)
    start_deadline = max(start + timedelta(seconds=timing.start_grace_s), settled)
    not_started = started_at is None and now >= start_deadline
    if started_at is None and not not_started:
        deadlines.append(start_deadline)
    if all(v.status is not VisitStatus.PENDING for v in visits):
        missed = any(v.status is VisitStatus.MISSED for v in visits)
        status = RoundStatus.INCOMPLETE if missed else RoundStatus.COMPLETED
        deadlines = []
    else:
        status = RoundStatus.IN_PROGRESS if started_at is not None else RoundStatus.SCHEDULED
    return Evaluation(visits, status, started_at, not_started, min(deadlines, default=None))
