"""The alarm events patrols raise and clear: pure builders, applied in line with the engine's.

A round's alarms have the subject `round-{id}` (device type `patrol_round`), so a round has one
ticket that links it; unknown tags gather on the site's `unknown-tags` subject (device type
`patrol_tag`), apart from the reader's own ticket, where an `SOS` must stand out.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from ground.clock import to_ms
from ground.events import AlarmEvent
from ground.severity import Severity
from patrol.evaluation import Timing
from patrol.outcomes import ReaderEvent
from records.models import PatrolCheckpoint, PatrolRound, PatrolVisit
from tickets.lifecycle import Source

ROUND = "patrol_round"  # the device type of a round's alarms
TAG = "patrol_tag"  # the device type of the unknown-tags alarm
UNKNOWN_TAGS = "unknown-tags"  # its subject, one per site


class PatrolRule(StrEnum):
    """The rules of patrol alarms (an alarm's `rule`)."""

    CHECKPOINT_MISSED = "checkpoint_missed"
    ROUND_NOT_STARTED = "round_not_started"
    GUARD_NOT_ON_ROUND = "patrol_guard_not_on_round"
    UNKNOWN_TAG = "patrol_unknown_tag"

    @property
    def code(self) -> str:
        """The code in the alarm's detail: the rule in capitals."""
        return self.value.upper()


def round_subject(round_id: int) -> str:
    """The subject (device id) of a round's alarms."""
    return f"round-{round_id}"


def unknown_tag(event: ReaderEvent) -> AlarmEvent:
    """A tag no checkpoint of the site has: the site's one "unknown tags" ticket gathers them."""
    return AlarmEvent(
        kind="raised",
        site=event.site,
        device_type=TAG,
        device_id=UNKNOWN_TAGS,
        rule=PatrolRule.UNKNOWN_TAG.value,
        severity=Severity.ROUTINE,
        ts=event.ts,
        title="Unknown patrol tags",
        detail={
            "code": PatrolRule.UNKNOWN_TAG.code,
            "tag": event.tag,
            "guard": event.guard,
            "reader": event.reader,
        },
        source=Source.PATROL.value,
    )


def guard_not_on_round(r: PatrolRound, event: ReaderEvent) -> AlarmEvent:
    """A scan on a round's route by a guard not on it: routine, on the round's ticket."""
    rule = PatrolRule.GUARD_NOT_ON_ROUND
    detail = {"code": rule.code, "tag": event.tag, "guard": event.guard, "reader": event.reader}
    title = f"Patrol round {r.id}: scan by a guard not on it"
    return _raised(r, rule, event.ts, title, detail, Severity.ROUTINE)


def checkpoint_missed(
    r: PatrolRound, route_name: str, visit: PatrolVisit, cp: PatrolCheckpoint | None, timing: Timing
) -> AlarmEvent:
    """A checkpoint of the round not scanned by its due time plus the grace."""
    rule = PatrolRule.CHECKPOINT_MISSED
    detail = {
        "code": rule.code,
        "round": r.id,
        "guard": r.guard,
        "checkpoint": visit.checkpoint_id,
        "name": cp.name if cp else visit.checkpoint_id,
        "due": visit.due.isoformat(),
        "location": cp.location if cp else None,
    }
    # Two stops due together are two misses: distinct times, or the second looks replayed.
    ts = to_ms(visit.due + timedelta(seconds=timing.grace_s)) + visit.position
    return _raised(r, rule, ts, f"Patrol {route_name}, guard {r.guard}: checkpoint missed", detail)


def round_not_started(r: PatrolRound, route_name: str, timing: Timing) -> AlarmEvent:
    """Nothing of the round scanned by its start plus the start grace."""
    rule = PatrolRule.ROUND_NOT_STARTED
    detail: dict[str, Any] = {"code": rule.code, "round": r.id, "guard": r.guard}
    ts = to_ms(r.start + timedelta(seconds=timing.start_grace_s))
    return _raised(r, rule, ts, f"Patrol {route_name}, guard {r.guard}: round not started", detail)


def cleared(r: PatrolRound, rule: PatrolRule, now: datetime) -> AlarmEvent:
    """The round's alarm of `rule` no longer holds (a late upload filled the gap)."""
    return AlarmEvent(
        kind="cleared",
        site=r.site,
        device_type=ROUND,
        device_id=round_subject(r.id),
        rule=rule.value,
        severity=Severity.MAJOR,
        ts=to_ms(now),
        title="",
        detail={},
        source=Source.PATROL.value,
        round_id=r.id,
    )


def _raised(
    r: PatrolRound,
    rule: PatrolRule,
    ts: int,
    title: str,
    detail: dict[str, Any],
    severity: Severity = Severity.MAJOR,
) -> AlarmEvent:
    return AlarmEvent(
        kind="raised",
        site=r.site,
        device_type=ROUND,
        device_id=round_subject(r.id),
        rule=rule.value,
        severity=severity,
        ts=ts,
        title=title,
        detail=detail,
        source=Source.PATROL.value,
        round_id=r.id,
    )
