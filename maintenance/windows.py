"""Maintenance windows: while people work on a device (or a building), its alarms are held, not ticketed.

An alarm raised inside a window is recorded with `held` and opens no ticket; the life-safety rules
of the contract are never held. When a window ends, an alarm still active opens its ticket then.
Starting a work order opens a window on its device until the order is resolved.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from ground.clock import from_ms, utcnow
from ground.events import AlarmEvent
from records.db import Database
from records.models import Alarm, Device, MaintenanceWindow, WorkOrder
from tickets.changes import ChangeKind, TicketChange
from tickets.service import TicketService

# Danger to life: entrapment, the passenger alarm, fire, sprinkler flow, a guard's SOS, CO at the
# danger limit, a flooding sump. People working on the equipment never silence these.
LIFE_SAFETY_RULES = frozenset(
    {
        "entrapment",
        "entrapment_at_landing",
        "alarm_button",
        "fire_alarm",
        "sprinkler_flow",
        "sos",
        "garage_co_danger",
        "sump_flooding",
    }
)
# A started work order's window lasts until the order is resolved, at most this long.
WORK_ORDER_WINDOW = timedelta(days=7)


class WindowMissing(LookupError):
    """No maintenance window with that id."""


class BadWindow(ValueError):
    """A window that cannot be: no device nor building, or an end not after its start."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Covered:
    """What a window covers: devices of a site, or every device of a building of the site."""

    site: str
    device_ids: tuple[str, ...] = ()
    building: str | None = None


class WindowBook:
    """Maintenance windows in the records database, and the rule of what they hold."""

    def __init__(self, db: Database, clock: Callable[[], datetime] = utcnow) -> None:
        self._db = db
        self.clock = clock

    # --- people's windows ----------------------------------------------------------------------

    def add(
        self,
        covered: Covered,
        start: datetime,
        end: datetime,
        reason: str,
        actor: str,
        work_order_id: int | None = None,
    ) -> MaintenanceWindow:
        """A window over devices or a building, from `start` to `end`."""
        if not covered.device_ids and not covered.building:
            raise BadWindow("device_ids", "name the devices, or a building, the window covers")
        if end <= start:
            raise BadWindow("end", "the end must come after the start")
        window = MaintenanceWindow(
            site=covered.site,
            device_ids=list(covered.device_ids),
            building=covered.building,
            start=start,
            end=end,
            reason=reason,
            created_by=actor,
            created_at=self.clock(),
            work_order_id=work_order_id,
        )
        with self._db.session() as s:
            s.add(window)
        return window

    def list(
        self, sites: frozenset[str] | None = None, current_only: bool = False
    ) -> Sequence[MaintenanceWindow]:
        """Windows, newest start first; of these sites, or only those not yet ended."""
        q = select(MaintenanceWindow).order_by(MaintenanceWindow.start.desc(), MaintenanceWindow.id.desc())
        if sites is not None:
            q = q.where(MaintenanceWindow.site.in_(sorted(sites)))
        if current_only:
            q = q.where(MaintenanceWindow.closed_at.is_(None))
        with self._db.read() as s:
            return s.scalars(q.limit(1000)).all()

    def get(self, window_id: int) -> MaintenanceWindow:
        """One window."""
        with self._db.read() as s:
            window = s.get(MaintenanceWindow, window_id)
        if window is None:
            raise WindowMissing(f"no maintenance window {window_id}")
        return window

    def change(
        self, window_id: int, end: datetime | None = None, reason: str | None = None
    ) -> MaintenanceWindow:
        """Move a window's end (earlier ends it sooner) or change its reason; an ended one stays ended."""
        with self._db.session() as s:
            window = _locked(s, window_id)
            if end is not None and window.closed_at is None:
                if end <= window.start:
                    raise BadWindow("end", "the end must come after the start")
                window.end = end
            if reason is not None:
                window.reason = reason
            return window

    def end_now(self, window_id: int) -> MaintenanceWindow:
        """End a window now (what deleting it means: the alarms it held are released)."""
        with self._db.session() as s:
            window = _locked(s, window_id)
            if window.closed_at is None:
                _end(window, self.clock())
            return window

    # --- what is held --------------------------------------------------------------------------

    def holds(self, s: Session, event: AlarmEvent) -> bool:
        """Whether a window holds this raise: its device covered at the event's time, not life safety."""
        if event.rule in LIFE_SAFETY_RULES:
            return False
        at = from_ms(event.ts)
        return self._covered(s, event.site, event.device_id, at)

    def _covered(self, s: Session, site: str, device_id: str, at: datetime) -> bool:
        windows = s.scalars(
            select(MaintenanceWindow).where(
                MaintenanceWindow.site == site,
                MaintenanceWindow.start <= at,
                MaintenanceWindow.end > at,
                MaintenanceWindow.closed_at.is_(None),
            )
        ).all()
        if not windows:
            return False
        if any(device_id in w.device_ids for w in windows):
            return True
        buildings = {w.building for w in windows if w.building}
        if not buildings:
            return False
        building = s.scalars(
            select(Device.building).where(Device.site == site, Device.device_id == device_id)
        ).one_or_none()
        return building in buildings

    def release_ended(self, tickets: TicketService) -> int:
        """Timer: close the windows that ended; alarms they held and still active open their tickets.

        Returns how many tickets were opened or updated.
        """
        now = self.clock()
        with self._db.session() as s:
            ended = s.scalars(
                select(MaintenanceWindow)
                .where(MaintenanceWindow.end <= now, MaintenanceWindow.closed_at.is_(None))
                .with_for_update()
            ).all()
            for window in ended:
                window.closed_at = now
            sites = {w.site for w in ended}
        if not sites:
            return 0
        with self._db.read() as s:
            held = s.scalars(
                select(Alarm).where(
                    Alarm.held.is_(True), Alarm.active.is_(True), Alarm.site.in_(sorted(sites))
                )
            ).all()
            still = [a.id for a in held if not self._covered(s, a.site, a.device_id, now)]
        return tickets.release_held(still)

    # --- work orders ---------------------------------------------------------------------------

    def on_ticket_change(self, change: TicketChange) -> None:
        """Listener: a work order started opens a window on its device; resolved, the window ends."""
        if change.source != "maintenance" or change.device_id is None:
            return
        if change.kind is ChangeKind.STARTED:
            self._open_for_work_order(change)
        elif change.kind in (ChangeKind.RESOLVED, ChangeKind.CLOSED):
            self._end_for_work_order(change.ticket_id)

    def _open_for_work_order(self, change: TicketChange) -> None:
        with self._db.read() as s:
            order = s.scalars(select(WorkOrder).where(WorkOrder.ticket_id == change.ticket_id)).one_or_none()
            if order is None:
                return
            open_already = s.scalars(
                select(MaintenanceWindow.id).where(
                    MaintenanceWindow.work_order_id == order.id, MaintenanceWindow.closed_at.is_(None)
                )
            ).first()
        if open_already is not None:
            return
        now = self.clock()
        covered = Covered(order.site, (order.device_id,))
        self.add(covered, now, now + WORK_ORDER_WINDOW, f"work order #{change.ticket_id}", "system", order.id)

    def _end_for_work_order(self, ticket_id: int) -> None:
        now = self.clock()
        with self._db.session() as s:
            windows = s.scalars(
                select(MaintenanceWindow)
                .join(WorkOrder, WorkOrder.id == MaintenanceWindow.work_order_id)
                .where(WorkOrder.ticket_id == ticket_id, MaintenanceWindow.closed_at.is_(None))
            ).all()
            for window in windows:
                _end(window, now)


def _locked(s: Session, window_id: int) -> MaintenanceWindow:
    """The window, locked for a change (PostgreSQL); WindowMissing without one."""
    window = s.get(MaintenanceWindow, window_id, with_for_update=True)
    if window is None:
        raise WindowMissing(f"no maintenance window {window_id}")
    return window


def _end(window: MaintenanceWindow, now: datetime) -> None:
    """End a window at `now`, unless it ends sooner; never before its start (an end must follow it)."""
    window.end = min(window.end, max(now, window.start + timedelta(microseconds=1)))


def attach(tickets: TicketService) -> WindowBook:
    """Windows for this ticket service: raises they cover are held; a started work order opens one."""
    book = WindowBook(tickets.db, tickets.clock)
    tickets.holds = book.holds
    tickets.listeners.append(book.on_ticket_change)
    return book
