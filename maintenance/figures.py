"""On-plan rate (§4.1): work orders done by their due date of those due in a period, per site and type.

Pure. "By the due date" is by the site's calendar day: a job due at 10:00 and done at 16:00 the same
day is on plan, as a job by use (due when its threshold was reached) can be.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from records.models import WorkOrder


@dataclass
class OnPlan:
    """The work orders of a site and equipment type due in a period, and how they went."""

    site: str
    device_type: str
    due: int = 0
    on_plan: int = 0  # done by their due date
    late: int = 0  # done after it
    not_done: int = 0

    @property
    def rate(self) -> float | None:
        """Done by their due date ÷ due; None when none was due."""
        return self.on_plan / self.due if self.due else None


def done_on_plan(order: WorkOrder, zone: ZoneInfo) -> bool:
    """Whether a work order was done on or before its due day, in the site's time zone."""
    return (
        order.done_at is not None
        and order.done_at.astimezone(zone).date() <= order.due_at.astimezone(zone).date()
    )


def on_plan_rates(orders: Iterable[WorkOrder], zone: ZoneInfo) -> list[OnPlan]:
    """Per site and equipment type, by site then type."""
    found: dict[tuple[str, str], OnPlan] = {}
    for order in orders:
        key = (order.site, order.device_type or "unknown")
        row = found.setdefault(key, OnPlan(*key))
        row.due += 1
        if order.done_at is None:
            row.not_done += 1
        elif done_on_plan(order, zone):
            row.on_plan += 1
        else:
            row.late += 1
    return [found[key] for key in sorted(found)]
