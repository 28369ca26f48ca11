"""What a patrol reader sends and what became of it, as the scans table stores them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from ground.clock import from_ms
from ground.contract import Kind, Message

READER = "patrol_reader"  # the contract's device type of patrol readers
TAG_CHARS = 128  # what `patrol_scans.tag` holds
GUARD_CHARS = 100  # what `patrol_scans.guard` holds


class ReaderCode(StrEnum):
    """The event codes of a patrol reader that the patrol records take (contract, `patrol_reader`)."""

    SCAN = "PATROL_SCAN"
    FINDING = "PATROL_FINDING"


class ScanOutcome(StrEnum):
    """What became of a kept scan or finding (`patrol_scans.outcome`)."""

    COUNTED = "counted"  # by a guard of a round whose window holds it: the round is judged again
    UNKNOWN_TAG = "unknown_tag"  # no checkpoint of the site has the tag
    GUARD_NOT_ON_ROUND = "guard_not_on_round"  # on a round's route, by a guard not on the round
    NO_ROUND = "no_round"  # a known checkpoint, but no round's window holds the scan
    FINDING_PENDING = "finding_pending"  # a finding kept, its ticket not yet made
    FINDING = "finding"  # a finding whose ticket was made (or corroborated)
    # Served a verify stop away from the due time of its checkpoint on the round: a detour the
    # round's evaluation does not see, so it cannot make the round's stops early or out of order.
    VERIFIED = "verified"


@dataclass(frozen=True)
class ReaderEvent:
    """A reader's scan or finding, cut to what the scans table holds."""

    site: str
    reader: str
    code: ReaderCode
    tag: str
    guard: str | None
    ts: int  # the reader's clock, epoch ms: when the tag was read
    detail: dict[str, Any]  # as sent: a finding's text and device are here

    @property
    def at(self) -> datetime:
        """When the tag was read, by the reader's clock."""
        return from_ms(self.ts)

    @classmethod
    def of(cls, m: Message) -> ReaderEvent | None:
        """The scan or finding a decoded message carries; None for any other message."""
        if m.kind is not Kind.EVENT or m.device_type != READER:
            return None
        try:
            code = ReaderCode(m.body["code"])
        except ValueError:
            return None  # an SOS or another event of the reader: the rules engine's
        detail = m.body["detail"]
        guard = detail.get("guard")
        return cls(
            site=m.site,
            reader=m.device_id,
            code=code,
            tag=str(detail.get("tag") or "")[:TAG_CHARS],
            guard=str(guard)[:GUARD_CHARS] if guard is not None else None,
            ts=m.ts,
            detail=detail,
        )

    def __str__(self) -> str:
        return f"{self.code} from {self.site}/{self.reader}"
