"""Calendar maintenance: the timer that opens each work order when its due date less its lead has come."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import func, select

from maintenance.records import covered
from maintenance.schedule import Period, calendar_due
from maintenance.usage import Trigger
from maintenance.workorders import WorkOrders
from records.db import Database
from records.models import MaintenancePlan, WorkOrder

log = logging.getLogger(__name__)


class CalendarDue:
    """Opens the calendar work orders that have come due, for every plan and device it covers."""

    def __init__(
        self,
        db: Database,
        orders: WorkOrders,
        clock: Callable[[], datetime],
        lock: threading.RLock,
        sites: frozenset[str] | None = None,
    ) -> None:
        self.db = db
        self.sites = sites  # whose plans the timer opens; None: every site
        self.orders = orders
        self.clock = clock
        self._lock = lock  # with the use counts, which a calendar work order starts again

    def open_due(self) -> int:
        """Timer: open what has come due; returns how many work orders were opened."""
        opened = 0
        q = select(MaintenancePlan.id).where(MaintenancePlan.every.is_not(None))
        if self.sites is not None:
            q = q.where(MaintenancePlan.site.in_(sorted(self.sites)))
        with self.db.read() as s:
            plan_ids = list(s.scalars(q))
        for plan_id in plan_ids:
            try:
                opened += self._open_plan(plan_id)
            except Exception:
                # One plan's failure (a database refusal) must not hold up the others; the next run retries.
                log.exception("could not open the work orders of maintenance plan %d", plan_id)
        return opened

    def _open_plan(self, plan_id: int) -> int:
        now = self.clock()
        with self.db.read() as s:
            plan = s.get(MaintenancePlan, plan_id)
            if plan is None or plan.every is None or plan.first_due is None:
                return 0
            devices = covered(s, plan)
            latest: dict[tuple[str, str], datetime] = {
                (device_id, trigger): due
                for device_id, trigger, due in s.execute(
                    select(WorkOrder.device_id, WorkOrder.trigger, func.max(WorkOrder.due_at))
                    .where(WorkOrder.plan_id == plan_id)
                    .group_by(WorkOrder.device_id, WorkOrder.trigger)
                )
            }
        period = Period.parse(plan.every)
        lead = timedelta(days=plan.lead_days)
        opened = 0
        for device in devices:
            by_use = [
                latest.get((device.device_id, t.value)) for t in (Trigger.COUNTER, Trigger.RUNNING_HOURS)
            ]
            last_by_use = max((t for t in by_use if t is not None), default=None)
            last_calendar = latest.get((device.device_id, Trigger.CALENDAR.value))
            for due in calendar_due(
                plan.first_due, period, lead, now, plan.created_at, last_calendar, last_by_use
            ):
                with self._lock:
                    if self.orders.open(plan, device, due, Trigger.CALENDAR) is not None:
                        opened += 1
        return opened
