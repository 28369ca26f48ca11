"""The maintenance records people keep: licensed contractors (§4.1.4) and plans (§4.1.1), checked.

A plan covers devices by id, every device of a type on its site, or of a building (with a type:
those of the type in the building). A plan for elevators or fire equipment names a contractor
whose licence, unexpired, covers that type.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import delete, exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ground.contract import BOOL, DEVICE_TYPES, NUMBER
from maintenance.schedule import Period, PeriodError
from maintenance.usage import UseRule
from records.db import Database
from records.models import Contractor, Device, MaintenancePlan, MaintenanceUse, WorkOrder

# Specialist equipment maintained by licensed outside contractors (manual §4.1.4).
LICENSED = ("elevator", "fire_panel", "fire_pump", "fire_water_tank", "sprinkler_pipe")


class MaintenanceError(ValueError):
    """A request the maintenance records cannot take; `path` leads to what is wrong (HTTP 422)."""

    def __init__(self, field: str, message: str, *below: str | int) -> None:
        super().__init__(message)
        self.field = field
        self.path: tuple[str | int, ...] = (field, *below)


class NotFound(LookupError):
    """No such plan, contractor or work order (HTTP 404)."""


class LoadRefused(ValueError):
    """Plans the records refuse (a contractor missing or not licensed); `problems` names each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class Conflict(ValueError):
    """A change the records as they stand refuse: an id taken, history that depends on it (HTTP 409)."""


@dataclass(frozen=True)
class ContractorSpec:
    """A licensed contractor as people enter it."""

    name: str
    licence_number: str
    licence_expires: date
    equipment_types: tuple[str, ...]


@dataclass(frozen=True)
class PlanSpec:
    """A maintenance plan as people enter it; `first_due` None: due its lead time after it is entered."""

    site: str
    name: str
    items: tuple[str, ...]
    device_ids: tuple[str, ...] = ()
    device_type: str | None = None
    building: str | None = None
    every: str | None = None
    first_due: datetime | None = None
    lead_days: int = 0
    counter: UseRule | None = None
    running_hours: UseRule | None = None
    responsible: str | None = None
    contractor: str | None = None


@dataclass(frozen=True)
class Covered:
    """A device a plan covers, with its type when known."""

    device_id: str
    device_type: str | None
    building: str | None = None


def use_rules(plan: MaintenancePlan) -> tuple[UseRule | None, UseRule | None]:
    """A plan's counter and running-hours rules."""
    counter = (
        UseRule(plan.counter_metric, plan.counter_every)
        if plan.counter_metric and plan.counter_every
        else None
    )
    running = (
        UseRule(plan.running_metric, plan.running_every_h)
        if plan.running_metric and plan.running_every_h
        else None
    )
    return counter, running


def covered(s: Session, plan: MaintenancePlan) -> list[Covered]:
    """The devices a plan covers now: its ids (known or not yet), or its site's of its type or building."""
    if plan.device_ids:
        known = {
            d.device_id: d
            for d in s.scalars(
                select(Device).where(Device.site == plan.site, Device.device_id.in_(plan.device_ids))
            )
        }
        return [
            Covered(i, known[i].device_type if i in known else plan.device_type, _building(known.get(i)))
            for i in plan.device_ids
        ]
    q = select(Device).where(Device.site == plan.site).order_by(Device.device_id)
    if plan.device_type:
        q = q.where(Device.device_type == plan.device_type)
    if plan.building:
        q = q.where(Device.building == plan.building)
    return [Covered(d.device_id, d.device_type, d.building) for d in s.scalars(q)]


def _building(device: Device | None) -> str | None:
    return device.building if device is not None else None


class MaintenanceRecords:
    """Creates, reads, changes and removes contractors and plans."""

    def __init__(self, db: Database, clock: Callable[[], datetime]) -> None:
        self.db = db
        self.clock = clock

    # --- contractors ---------------------------------------------------------------------------

    def add_contractor(self, contractor_id: str, spec: ContractorSpec) -> Contractor:
        """A new contractor; its id must be new."""
        _check_types(spec.equipment_types)
        row = Contractor(id=contractor_id, created_at=self.clock(), expiry_ticket_for=None)
        _fill_contractor(row, spec)
        try:
            with self.db.session() as s:
                if s.get(Contractor, contractor_id) is not None:
                    raise Conflict(f"contractor {contractor_id} exists already")
                s.add(row)
        except IntegrityError:  # entered at the same moment by another request
            raise Conflict(f"contractor {contractor_id} exists already") from None
        return row

    def update_contractor(self, contractor_id: str, spec: ContractorSpec) -> Contractor:
        """Change a contractor; the plans that name it must still be covered by its licence."""
        _check_types(spec.equipment_types)
        with self.db.session() as s:
            row = _contractor(s, contractor_id)
            _fill_contractor(row, spec)
            for plan in s.scalars(
                select(MaintenancePlan).where(MaintenancePlan.contractor_id == contractor_id)
            ):
                lacking = _licensed_types(s, plan) - set(spec.equipment_types)
                if lacking:
                    raise MaintenanceError(
                        "equipment_types",
                        f"plan {plan.id} ({plan.name}) needs the licence to cover"
                        f" {', '.join(sorted(lacking))}",
                    )
        return row

    def contractors(self) -> Sequence[Contractor]:
        """Every contractor, by id."""
        with self.db.read() as s:
            return s.scalars(select(Contractor).order_by(Contractor.id)).all()

    def contractor(self, contractor_id: str) -> Contractor:
        """One contractor."""
        with self.db.read() as s:
            return _contractor(s, contractor_id)

    def delete_contractor(self, contractor_id: str) -> None:
        """Remove a contractor that no plan names."""
        with self.db.session() as s:
            row = _contractor(s, contractor_id)
            named = s.scalars(
                select(MaintenancePlan.id).where(MaintenancePlan.contractor_id == contractor_id)
            ).all()
            if named:
                raise Conflict(f"contractor {contractor_id} is named by plans {', '.join(map(str, named))}")
            s.delete(row)

    # --- plans ---------------------------------------------------------------------------------

    def add_plan(self, spec: PlanSpec) -> MaintenancePlan:
        """A new plan, checked."""
        now = self.clock()
        with self.db.session() as s:
            plan = MaintenancePlan(created_at=now)
            _fill_plan(plan, spec, now)
            _check_plan(s, plan, now.date())
            s.add(plan)
        return plan

    def update_plan(self, plan_id: int, spec: PlanSpec) -> MaintenancePlan:
        """Change a plan; what its work orders recorded stays as it was."""
        now = self.clock()
        with self.db.session() as s:
            plan = _plan(s, plan_id)
            kept_first_due = plan.first_due
            _fill_plan(plan, spec, now)
            if spec.first_due is None and kept_first_due is not None:
                plan.first_due = kept_first_due
            _check_plan(s, plan, now.date())
        return plan

    def plans(self, site: str | None = None) -> Sequence[MaintenancePlan]:
        """Plans, of one site or all, by id."""
        q = select(MaintenancePlan).order_by(MaintenancePlan.id)
        if site:
            q = q.where(MaintenancePlan.site == site)
        with self.db.read() as s:
            return s.scalars(q).all()

    def plan(self, plan_id: int) -> MaintenancePlan:
        """One plan."""
        with self.db.read() as s:
            return _plan(s, plan_id)

    def plan_named(self, site: str, name: str) -> MaintenancePlan | None:
        """The plan of a site with this name, if any (the plans file's key)."""
        with self.db.read() as s:
            return s.scalars(
                select(MaintenancePlan)
                .where(MaintenancePlan.site == site, MaintenancePlan.name == name)
                .order_by(MaintenancePlan.id)
                .limit(1)
            ).one_or_none()

    def load(
        self, contractors: Sequence[tuple[str, ContractorSpec]], plans: Sequence[PlanSpec]
    ) -> tuple[int, int]:
        """Enter or update contractors (by id) and plans (by site and name) together, or none of them.

        Returns how many plans were new. LoadRefused names every plan and contractor refused.
        """
        now = self.clock()
        problems: list[str] = []
        new = 0
        with self.db.session() as s:
            for contractor_id, contractor in contractors:
                row = s.get(Contractor, contractor_id)
                if row is None:
                    row = Contractor(id=contractor_id, created_at=now, expiry_ticket_for=None)
                    s.add(row)
                _fill_contractor(row, contractor)
            s.flush()
            for n, spec in enumerate(plans, 1):
                plan = s.scalars(
                    select(MaintenancePlan)
                    .where(MaintenancePlan.site == spec.site, MaintenancePlan.name == spec.name)
                    .order_by(MaintenancePlan.id)
                    .limit(1)
                ).one_or_none()
                kept_first_due = plan.first_due if plan is not None else None
                if plan is None:
                    plan, new = MaintenancePlan(created_at=now), new + 1
                    s.add(plan)
                _fill_plan(plan, spec, now)
                if spec.first_due is None and kept_first_due is not None and spec.every:
                    plan.first_due = kept_first_due
                try:
                    with s.no_autoflush:
                        _check_plan(s, plan, now.date())
                except MaintenanceError as exc:
                    problems.append(f"plan {spec.name!r} (#{n}), field {exc.field!r}: {exc}")
            if problems:
                raise LoadRefused(problems)
        return len(contractors), new

    def delete_plan(self, plan_id: int) -> None:
        """Remove a plan that has opened no work order (one that has is part of the records, §4.1.5)."""
        with self.db.session() as s:
            plan = _plan(s, plan_id)
            if s.scalar(select(exists().where(WorkOrder.plan_id == plan_id))):
                raise Conflict(f"plan {plan_id} has work orders, which are kept as the maintenance record")
            s.execute(delete(MaintenanceUse).where(MaintenanceUse.plan_id == plan_id))
            s.delete(plan)


def _contractor(s: Session, contractor_id: str) -> Contractor:
    row = s.get(Contractor, contractor_id)
    if row is None:
        raise NotFound(f"no contractor {contractor_id}")
    return row


def _plan(s: Session, plan_id: int) -> MaintenancePlan:
    plan = s.get(MaintenancePlan, plan_id)
    if plan is None:
        raise NotFound(f"no plan {plan_id}")
    return plan


def _check_types(types: Sequence[str]) -> None:
    unknown = [t for t in types if t not in DEVICE_TYPES]
    if unknown:
        raise MaintenanceError("equipment_types", f"unknown device types: {', '.join(unknown)}")


def _fill_contractor(row: Contractor, spec: ContractorSpec) -> None:
    if row.licence_expires != spec.licence_expires:
        row.expiry_ticket_for = None  # a renewed licence is watched afresh
    row.name = spec.name
    row.licence_number = spec.licence_number
    row.licence_expires = spec.licence_expires
    row.equipment_types = sorted(set(spec.equipment_types))


def _fill_plan(plan: MaintenancePlan, spec: PlanSpec, now: datetime) -> None:
    plan.site = spec.site
    plan.name = spec.name
    plan.device_ids = list(dict.fromkeys(spec.device_ids))
    plan.device_type = spec.device_type
    plan.building = spec.building
    plan.items = list(spec.items)
    plan.every = spec.every
    # Left out, the first job is due its lead time from now: its work order opens at once, not late.
    first_due = spec.first_due or now + timedelta(days=spec.lead_days)
    plan.first_due = first_due if spec.every else None
    plan.lead_days = spec.lead_days
    plan.counter_metric = spec.counter.metric if spec.counter else None
    plan.counter_every = spec.counter.every if spec.counter else None
    plan.running_metric = spec.running_hours.metric if spec.running_hours else None
    plan.running_every_h = spec.running_hours.every if spec.running_hours else None
    plan.responsible = spec.responsible
    plan.contractor_id = spec.contractor


def _check_plan(s: Session, plan: MaintenancePlan, today: date) -> None:
    """Refuse a plan that cannot work, naming the field."""
    if not (plan.device_ids or plan.device_type or plan.building):
        raise MaintenanceError("device_ids", "name the devices, a device type or a building the plan covers")
    if plan.device_type is not None and plan.device_type not in DEVICE_TYPES:
        raise MaintenanceError("device_type", f"unknown device type {plan.device_type!r}")
    if len(set(plan.items)) != len(plan.items):
        raise MaintenanceError("items", "an item is listed twice: each is marked on its own")
    if not (plan.every or plan.counter_metric or plan.running_metric):
        raise MaintenanceError("every", "give when it falls due: every (a period), counter or running_hours")
    if plan.every:
        try:
            Period.parse(plan.every)
        except PeriodError as exc:
            raise MaintenanceError("every", str(exc)) from None
    types = {c.device_type for c in covered(s, plan) if c.device_type} | (
        {plan.device_type} if plan.device_type else set()
    )
    if plan.device_type and types - {plan.device_type}:
        others = ", ".join(sorted(types - {plan.device_type}))
        raise MaintenanceError("device_ids", f"devices of other types than {plan.device_type}: {others}")
    for name, metric, kind in (
        ("counter", plan.counter_metric, NUMBER),
        ("running_hours", plan.running_metric, BOOL),
    ):
        for t in sorted(types):
            known = DEVICE_TYPES[t].metrics.get(metric) if metric else kind
            if known != kind:
                raise MaintenanceError(name, f"{t} sends no {kind} metric {metric!r}")
    _check_contractor(s, plan, types, today)


def _licensed_types(s: Session, plan: MaintenancePlan) -> set[str]:
    types = {c.device_type for c in covered(s, plan) if c.device_type}
    if plan.device_type:
        types.add(plan.device_type)
    return types & set(LICENSED)


def _check_contractor(s: Session, plan: MaintenancePlan, types: set[str], today: date) -> None:
    licensed = sorted(types & set(LICENSED))
    contractor = s.get(Contractor, plan.contractor_id) if plan.contractor_id else None
    if plan.contractor_id and contractor is None:
        raise MaintenanceError("contractor", f"no contractor {plan.contractor_id}")
    if not licensed:
        return
    if contractor is None:
        raise MaintenanceError(
            "contractor", f"{', '.join(licensed)} must be maintained by a licensed contractor (§4.1.4)"
        )
    lacking = [t for t in licensed if t not in contractor.equipment_types]
    if lacking:
        raise MaintenanceError(
            "contractor", f"the licence of {contractor.id} does not cover {', '.join(lacking)}"
        )
    if contractor.licence_expires < today:
        raise MaintenanceError(
            "contractor", f"the licence of {contractor.id} expired on {contractor.licence_expires}"
        )
