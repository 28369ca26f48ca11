"""What maintenance records beside the readings, for dashboards: each work order as it is done.

work_orders:  tags site, device_type, trigger; fields on_plan (1 done by its due day, else 0),
              days_late, ticket_id, plan_id; time = when it was done.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from sqlalchemy import select

from collector.lineprotocol import Point, Sink, format_fields
from ground.clock import to_ms
from maintenance.figures import done_on_plan
from records.db import Database
from records.models import WorkOrder
from tickets.changes import ChangeKind, TicketChange


def work_order_point(order: WorkOrder, zone: ZoneInfo) -> Point:
    """The point of a work order done."""
    assert order.done_at is not None
    ts = to_ms(order.done_at)
    late = (order.done_at.astimezone(zone).date() - order.due_at.astimezone(zone).date()).days
    fields = {
        "on_plan": 1 if done_on_plan(order, zone) else 0,
        "days_late": max(0, late),
    }
    return (
        f"work_orders,site={order.site},device_type={order.device_type or 'unknown'},"
        f"trigger={order.trigger} {format_fields(fields)},ticket_id={order.ticket_id}i,"
        f"plan_id={order.plan_id}i {ts}",
        ts,
    )


class WorkOrderRecorder:
    """Ticket listener: a work order's ticket resolved becomes a `work_orders` point."""

    def __init__(self, db: Database, sink: Sink, zone: ZoneInfo) -> None:
        self.db = db
        self.sink = sink
        self.zone = zone

    def __call__(self, change: TicketChange) -> None:
        """Record a work order done."""
        if change.kind is not ChangeKind.RESOLVED or change.source != "maintenance":
            return
        with self.db.read() as s:
            order = s.scalars(select(WorkOrder).where(WorkOrder.ticket_id == change.ticket_id)).one_or_none()
        if order is not None and order.done_at is not None:
            self.sink([work_order_point(order, self.zone)])
