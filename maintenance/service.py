"""Maintenance (§4.1): the one service the API, the collector, the timers and the command line use.

- `records.py`: contractors and plans, checked (licences for elevators and fire equipment);
- `schedule.py`: ISO 8601 periods and calendar due dates; `due.py`: the timer that opens them;
- `usage.py`: counting use from telemetry; `metering.py`: the collector's handler that does it;
- `workorders.py`: work orders (a ticket each), their checklists, the resolve check, the history;
- `licences.py`: tickets for licences expiring soon; `figures.py`: the on-plan rate;
- `planfile.py`: the plans file.

The collector's thread (use) and the timers (calendar) both open work orders and start use counts
again; they take turns on one lock, taken before the records' writer turn.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from ground.clock import utcnow
from ground.contract import Message
from maintenance.due import CalendarDue
from maintenance.figures import OnPlan, on_plan_rates
from maintenance.licences import LicenceWatch
from maintenance.metering import UseMeter
from maintenance.planfile import PlanFileError, read_plan_file
from maintenance.records import (
    Conflict,
    ContractorSpec,
    LoadRefused,
    MaintenanceError,
    MaintenanceRecords,
    NotFound,
    PlanSpec,
)
from maintenance.workorders import Mark, WorkOrders, on_ticket_action
from records.db import Database
from records.models import Contractor, MaintenancePlan, WorkOrder
from tickets.service import TicketService

__all__ = [
    "Conflict",
    "ContractorSpec",
    "MaintenanceError",
    "MaintenanceService",
    "Mark",
    "NotFound",
    "PlanFileError",
    "PlanSpec",
    "on_ticket_action",
]

UTC_ZONE = ZoneInfo("UTC")


class MaintenanceService:
    """Plans, contractors and work orders: opened by the calendar and by use, worked through their checklist.

    `clock` is the wall clock calendar due dates are judged by; a test passes its own and calls
    `open_due()` to run through a year without waiting. Use is counted by the devices' own time.
    """

    def __init__(
        self,
        db: Database,
        tickets: TicketService,
        clock: Callable[[], datetime] = utcnow,
        zone: ZoneInfo = UTC_ZONE,
        sites: frozenset[str] | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.zone = zone
        self._lock = threading.RLock()
        self.records = MaintenanceRecords(db, clock)
        self.orders = WorkOrders(db, tickets, clock)
        # A worker of several opens only its own sites' calendar work orders.
        self.calendar = CalendarDue(db, self.orders, clock, self._lock, sites)
        self.meter = UseMeter(db, self.orders, self._lock)
        self.licences = LicenceWatch(db, tickets, clock, self._lock)
        # Before the collector's first batch: a restarted service counts from the first reading.
        self.meter.refresh()

    # --- contractors ---------------------------------------------------------------------------

    def add_contractor(self, contractor_id: str, spec: ContractorSpec) -> Contractor:
        """A new contractor; a licence expiring within 30 days opens its ticket at once."""
        row = self.records.add_contractor(contractor_id, spec)
        self.licences.check_one(contractor_id)
        return row

    def update_contractor(self, contractor_id: str, spec: ContractorSpec) -> Contractor:
        """Change a contractor; the plans naming it must stay covered by its licence."""
        row = self.records.update_contractor(contractor_id, spec)
        self.licences.check_one(contractor_id)
        return row

    def contractors(self) -> Sequence[Contractor]:
        """Every contractor."""
        return self.records.contractors()

    def contractor(self, contractor_id: str) -> Contractor:
        """One contractor."""
        return self.records.contractor(contractor_id)

    def delete_contractor(self, contractor_id: str) -> None:
        """Remove a contractor no plan names."""
        self.records.delete_contractor(contractor_id)

    # --- plans ---------------------------------------------------------------------------------

    def add_plan(self, spec: PlanSpec) -> MaintenancePlan:
        """A new plan; what has come due opens at once."""
        plan = self.records.add_plan(spec)
        self._changed()
        return plan

    def update_plan(self, plan_id: int, spec: PlanSpec) -> MaintenancePlan:
        """Change a plan; what has come due under it opens at once."""
        plan = self.records.update_plan(plan_id, spec)
        self._changed()
        return plan

    def plans(self, site: str | None = None) -> Sequence[MaintenancePlan]:
        """Plans, of one site or all."""
        return self.records.plans(site)

    def plan(self, plan_id: int) -> MaintenancePlan:
        """One plan."""
        return self.records.plan(plan_id)

    def delete_plan(self, plan_id: int) -> None:
        """Remove a plan that has opened no work order."""
        self.records.delete_plan(plan_id)
        self.meter.refresh()

    def load_file(self, path: Path) -> tuple[int, int, int]:
        """Load a plans file: (contractors, plans, of which new); PlanFileError naming every problem."""
        found = read_plan_file(path.read_text(encoding="utf-8"), str(path), self.today())
        try:
            contractors, new = self.records.load(found.contractors, found.plans)
        except LoadRefused as exc:
            raise PlanFileError(exc.problems, str(path)) from None
        self._changed()
        self.licences.check()
        return contractors, len(found.plans), new

    def _changed(self) -> None:
        self.meter.refresh()
        self.calendar.open_due()

    # --- timers and the collector --------------------------------------------------------------

    def open_due(self) -> int:
        """Timer (every minute, and at start-up): the use index built again, calendar work orders opened."""
        self.meter.refresh()
        return self.calendar.open_due()

    def check_licences(self) -> int:
        """Timer (daily, and at start-up): a ticket for each licence expiring within 30 days."""
        return self.licences.check()

    def handle(self, messages: Sequence[Message]) -> None:
        """Collector handler: count covered devices' use, open work orders when a threshold is reached."""
        self.meter.handle(messages)

    # --- work orders ---------------------------------------------------------------------------

    def work_order(self, ticket_id: int) -> WorkOrder:
        """The work order of a ticket."""
        return self.orders.get(ticket_id)

    def mark(self, ticket_id: int, marks: Sequence[Mark], actor: str) -> WorkOrder:
        """Mark items of a work order's checklist."""
        return self.orders.mark(ticket_id, marks, actor)

    def history(
        self,
        sites: frozenset[str] | None,
        site: str | None = None,
        device_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 1000,
    ) -> list[tuple[WorkOrder, str]]:
        """Done work orders with their plan's name, newest first (§4.1.5)."""
        return self.orders.records(sites, site, device_id, since, until, limit)

    def figures(self, sites: frozenset[str] | None, since: datetime, until: datetime) -> list[OnPlan]:
        """On-plan rate per site and equipment type of the work orders due in [since, until)."""
        return on_plan_rates(self.orders.due_between(sites, since, until), self.zone)

    def today(self) -> date:
        """Today, in the site's time zone."""
        return self.clock().astimezone(self.zone).date()
