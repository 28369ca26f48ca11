"""Work orders: a maintenance job on one device, a ticket (source `maintenance`) with the plan's checklist.

A work order opens once per plan, device and due date (the database's unique index, so restarts,
replays and racing timers cannot open two). Its ticket cannot be resolved while an item of the
checklist is unmarked; the resolve records when and who, the checklist what (§4.1.5).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ground.severity import Severity
from maintenance.records import Conflict, Covered, MaintenanceError, NotFound
from maintenance.usage import Trigger
from records.db import Database
from records.models import AuditEntry, Contractor, MaintenancePlan, MaintenanceUse, Ticket, WorkOrder
from tickets.lifecycle import Action, Source, Status, TransitionRefused
from tickets.service import NewTicket, TicketService

PLANNER = "maintenance plan"  # who opens work orders, in the audit trail


class AlreadyOpen(Exception):
    """The plan's work order for this device and due date exists."""


@dataclass(frozen=True)
class Mark:
    """One checklist item marked: done, not done (with a note saying why), or None to unmark."""

    item: str
    done: bool | None
    note: str | None = None


def unmarked(order: WorkOrder) -> list[str]:
    """The checklist's items marked neither done nor not done."""
    return [entry["item"] for entry in order.checklist if entry.get("done") is None]


def order_of(s: Session, ticket_id: int) -> WorkOrder | None:
    """The work order a ticket is, if any."""
    return s.scalars(select(WorkOrder).where(WorkOrder.ticket_id == ticket_id)).one_or_none()


def on_ticket_action(s: Session, ticket: Ticket, action: Action, actor: str) -> None:
    """Ticket action check: a work order resolves only with its checklist marked, and records who and when."""
    if ticket.source != Source.MAINTENANCE or action not in (Action.RESOLVE, Action.REOPEN):
        return
    order = order_of(s, ticket.id)
    if order is None:
        return
    if action is Action.REOPEN:
        order.done_at = order.done_by = None
        return
    missing = unmarked(order)
    if missing:
        raise TransitionRefused(
            f"the work order cannot be resolved while these items are not marked done or not done:"
            f" {', '.join(missing)}"
        )
    order.done_at, order.done_by = ticket.resolved_at, actor


class WorkOrders:
    """Opens work orders, marks their checklists, and reads them back."""

    def __init__(self, db: Database, tickets: TicketService, clock: Callable[[], datetime]) -> None:
        self.db = db
        self.tickets = tickets
        self.clock = clock

    def open(self, plan: MaintenancePlan, device: Covered, due: datetime, trigger: Trigger) -> int | None:
        """Open the plan's work order on a device for a due date; None when it is open already.

        The counting by use of the plan on the device starts again in the same transaction: a job
        done, whatever asked for it, is the new start of both calendar and use.
        """
        contractor = self._contractor(plan.contractor_id)
        lines = [f"Checklist: {', '.join(plan.items)}."]
        if contractor is not None:
            lines.append(f"Contractor: {contractor.name} (licence {contractor.licence_number}).")
        if plan.responsible:
            lines.append(f"Responsible: {plan.responsible}.")
        new = NewTicket(
            site=plan.site,
            title=f"{plan.name}: {device.device_id}"[:300],
            severity=Severity.ROUTINE,
            source=Source.MAINTENANCE,
            description=" ".join(lines),
            device_id=device.device_id,
            response_due=due,
            assignee=plan.responsible,
        )

        def attach(s: Session, ticket: Ticket) -> None:
            taken = select(WorkOrder.id).where(
                WorkOrder.plan_id == plan.id, WorkOrder.device_id == device.device_id, WorkOrder.due_at == due
            )
            if s.scalar(taken) is not None:
                raise AlreadyOpen
            s.add(
                WorkOrder(
                    ticket_id=ticket.id,
                    plan_id=plan.id,
                    site=plan.site,
                    device_id=device.device_id,
                    device_type=ticket.device_type or device.device_type,
                    due_at=due,
                    trigger=trigger.value,
                    checklist=[{"item": item, "done": None, "note": None} for item in plan.items],
                )
            )
            use = s.get(MaintenanceUse, (plan.id, device.device_id))
            if use is not None:
                use.counter_base, use.running_s = None, 0.0
            s.flush()

        try:
            return self.tickets.open_ticket(new, PLANNER, attach).id
        except (AlreadyOpen, IntegrityError):
            return None

    def _contractor(self, contractor_id: str | None) -> Contractor | None:
        if contractor_id is None:
            return None
        with self.db.read() as s:
            return s.get(Contractor, contractor_id)

    def get(self, ticket_id: int) -> WorkOrder:
        """The work order of a ticket."""
        with self.db.read() as s:
            order = order_of(s, ticket_id)
            if order is None:
                raise NotFound(f"ticket {ticket_id} is no work order")
            return order

    def mark(self, ticket_id: int, marks: Sequence[Mark], actor: str) -> WorkOrder:
        """Mark items of a work order's checklist; not done needs a note. Refused once it is resolved."""
        for n, m in enumerate(marks):
            if m.done is False and not (m.note and m.note.strip()):
                raise MaintenanceError("items", f"{m.item}: not done needs a note saying why", n, "note")
        with self.db.session() as s:
            order = order_of(s, ticket_id)
            ticket = s.get(Ticket, ticket_id, with_for_update=True)
            if order is None or ticket is None:
                raise NotFound(f"ticket {ticket_id} is no work order")
            if ticket.status in (Status.RESOLVED, Status.CLOSED):
                raise Conflict(f"work order {ticket_id} is {ticket.status.value}: its record stays as it was")
            checklist = [dict(entry) for entry in order.checklist]
            at = {entry["item"]: entry for entry in checklist}
            for n, m in enumerate(marks):
                entry = at.get(m.item)
                if entry is None:
                    raise MaintenanceError("items", f"{m.item!r} is not on the checklist", n, "item")
                entry["done"], entry["note"] = m.done, m.note
            order.checklist = checklist  # a new list: the JSON column sees the change
            detail = {"items": [{"item": m.item, "done": m.done, "note": m.note} for m in marks]}
            s.add(
                AuditEntry(
                    ticket_id=ticket_id, at=self.clock(), actor=actor, action="checklist", detail=detail
                )
            )
        return order

    def records(
        self,
        sites: frozenset[str] | None,
        site: str | None,
        device_id: str | None,
        since: datetime | None,
        until: datetime | None,
        limit: int = 1000,
    ) -> list[tuple[WorkOrder, str]]:
        """Done work orders with their plan's name, newest done first (§4.1.5: when, what, who)."""
        q = (
            select(WorkOrder, MaintenancePlan.name)
            .join(MaintenancePlan, MaintenancePlan.id == WorkOrder.plan_id)
            .where(WorkOrder.done_at.is_not(None))
            .order_by(WorkOrder.done_at.desc(), WorkOrder.id.desc())
            .limit(limit)
        )
        if sites is not None:
            q = q.where(WorkOrder.site.in_(sorted(sites)))
        if site is not None:
            q = q.where(WorkOrder.site == site)
        if device_id is not None:
            q = q.where(WorkOrder.device_id == device_id)
        if since is not None:
            q = q.where(WorkOrder.done_at >= since)
        if until is not None:
            q = q.where(WorkOrder.done_at < until)
        with self.db.read() as s:
            return [(order, name) for order, name in s.execute(q)]

    def due_between(self, sites: frozenset[str] | None, since: datetime, until: datetime) -> list[WorkOrder]:
        """Work orders due in [since, until), of some sites or all."""
        q = select(WorkOrder).where(WorkOrder.due_at >= since, WorkOrder.due_at < until)
        if sites is not None:
            q = q.where(WorkOrder.site.in_(sorted(sites)))
        with self.db.read() as s:
            return list(s.scalars(q))
