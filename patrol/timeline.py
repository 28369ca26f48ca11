"""What the service records of patrol rounds in the time-series store, for dashboards.

Measurements, time in milliseconds (tickets/timeline.py has the others):
  patrol_rounds:      tags site, route, guard; fields status, completed (1/0), round_id, counts by status
  patrol_checkpoints: tags site, route, guard, checkpoint; fields status, missed (1/0), round_id, offset_s
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from collector.lineprotocol import Point, format_fields
from ground.clock import to_ms
from patrol.evaluation import RoundStatus, VisitStatus


def patrol_round_point(
    site: str, route: str, guard: str, status: str, round_id: int, counts: Mapping[str, int], start: datetime
) -> Point:
    """A round that ended: its status and how many of its checkpoints ended in each status.

    The status is a field, not a tag: a late upload can turn an incomplete round complete, and
    the new point must replace the old one (same series, same time) rather than sit beside it.
    """
    ts = to_ms(start)
    fields = {"status": status, "completed": float(status == RoundStatus.COMPLETED), **counts}
    line = (
        f"patrol_rounds,site={site},route={route},guard={guard} "
        f"{format_fields(fields)},round_id={round_id}i {ts}"
    )
    return line, ts


def patrol_checkpoint_point(
    site: str,
    route: str,
    guard: str,
    checkpoint: str,
    status: str,
    round_id: int,
    offset_s: float,
    due: datetime,
) -> Point:
    """A checkpoint of a round whose status is final, at its due time (status a field, as above)."""
    ts = to_ms(due)
    fields = {"status": status, "missed": float(status == VisitStatus.MISSED), "offset_s": offset_s}
    line = (
        f"patrol_checkpoints,site={site},route={route},guard={guard},checkpoint={checkpoint} "
        f"{format_fields(fields)},round_id={round_id}i {ts}"
    )
    return line, ts
