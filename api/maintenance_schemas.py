"""Request and response shapes of the maintenance API: plans, contractors, work orders and their record."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, Field

from api.schemas import SITE_OR_DEVICE, Input
from maintenance.figures import OnPlan
from maintenance.service import ContractorSpec, Mark, PlanSpec
from maintenance.usage import UseRule
from records.models import Contractor, MaintenancePlan, WorkOrder

Ident = Field(pattern=SITE_OR_DEVICE)
DeviceId = Annotated[str, Field(pattern=SITE_OR_DEVICE)]
Item = Annotated[str, Field(min_length=1, max_length=200)]
DeviceType = Annotated[str, Field(pattern=SITE_OR_DEVICE, description="a device type of the contract")]


class UseRuleModel(Input):
    """Every `every` of a metric: a counter's rise (`counter`), or hours of a boolean being true."""

    metric: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    every: float = Field(gt=0, le=1e12, allow_inf_nan=False)


class PlanCreate(Input):
    """A plan: what it covers, its checklist, who does it, and when it falls due (calendar, use, or both)."""

    site: str = Ident
    name: str = Field(min_length=1, max_length=200)
    device_ids: list[DeviceId] = Field(default=[], max_length=500)
    device_type: DeviceType | None = Field(default=None, description="every device of the type on the site")
    building: str | None = Field(default=None, min_length=1, max_length=100)
    items: list[Item] = Field(min_length=1, max_length=100, description="the checklist")
    every: str | None = Field(
        default=None, max_length=16, description="ISO 8601 period: P15D, P1M, P3M, P1Y, P2W"
    )
    first_due: datetime | None = Field(default=None, description="default: when the plan is entered")
    lead_days: int = Field(default=0, ge=0, le=366, description="the work order opens this many days ahead")
    counter: UseRuleModel | None = Field(default=None, description="e.g. every 50000 of `run_count`")
    running_hours: UseRuleModel | None = Field(default=None, description="e.g. every 500 h of `running`")
    responsible: str | None = Field(default=None, min_length=1, max_length=100, description="a user")
    contractor: str | None = Field(default=None, pattern=SITE_OR_DEVICE, description="a contractor's id")

    def spec(self, first_due: datetime | None) -> PlanSpec:
        """What the service takes."""
        return PlanSpec(
            site=self.site,
            name=self.name,
            items=tuple(self.items),
            device_ids=tuple(self.device_ids),
            device_type=self.device_type,
            building=self.building,
            every=self.every,
            first_due=first_due,
            lead_days=self.lead_days,
            counter=UseRule(self.counter.metric, self.counter.every) if self.counter else None,
            running_hours=(
                UseRule(self.running_hours.metric, self.running_hours.every) if self.running_hours else None
            ),
            responsible=self.responsible,
            contractor=self.contractor,
        )


class UseRulePublic(BaseModel):
    """A use rule."""

    metric: str
    every: float


class PlanPublic(BaseModel):
    """A plan."""

    id: int
    site: str
    name: str
    device_ids: list[str]
    device_type: str | None
    building: str | None
    items: list[str]
    every: str | None
    first_due: datetime | None
    lead_days: int
    counter: UseRulePublic | None
    running_hours: UseRulePublic | None
    responsible: str | None
    contractor: str | None
    created_at: datetime


def plan_public(p: MaintenancePlan) -> PlanPublic:
    """The API's view of a plan."""
    counter = (
        UseRulePublic(metric=p.counter_metric, every=p.counter_every)
        if p.counter_metric and p.counter_every
        else None
    )
    running = (
        UseRulePublic(metric=p.running_metric, every=p.running_every_h)
        if p.running_metric and p.running_every_h
        else None
    )
    return PlanPublic(
        id=p.id,
        site=p.site,
        name=p.name,
        device_ids=p.device_ids,
        device_type=p.device_type,
        building=p.building,
        items=p.items,
        every=p.every,
        first_due=p.first_due,
        lead_days=p.lead_days,
        counter=counter,
        running_hours=running,
        responsible=p.responsible,
        contractor=p.contractor_id,
        created_at=p.created_at,
    )


class ContractorUpdate(Input):
    """A licensed contractor (§4.1.4): name, licence number and expiry, the equipment types it covers."""

    name: str = Field(min_length=1, max_length=200)
    licence_number: str = Field(min_length=1, max_length=100)
    licence_expires: date = Field(ge=date(2000, 1, 1), lt=date(9000, 1, 1))
    equipment_types: list[DeviceType] = Field(min_length=1, max_length=20)

    def spec(self) -> ContractorSpec:
        """What the service takes."""
        return ContractorSpec(
            self.name, self.licence_number, self.licence_expires, tuple(self.equipment_types)
        )


class ContractorCreate(ContractorUpdate):
    """A new contractor, with its id."""

    id: str = Ident


class ContractorPublic(BaseModel):
    """A contractor."""

    id: str
    name: str
    licence_number: str
    licence_expires: date
    equipment_types: list[str]
    created_at: datetime
    expiry_ticket_for: date | None = Field(description="the expiry date a licence ticket was opened for")


def contractor_public(c: Contractor) -> ContractorPublic:
    """The API's view of a contractor."""
    return ContractorPublic(
        id=c.id,
        name=c.name,
        licence_number=c.licence_number,
        licence_expires=c.licence_expires,
        equipment_types=c.equipment_types,
        created_at=c.created_at,
        expiry_ticket_for=c.expiry_ticket_for,
    )


class ChecklistEntry(BaseModel):
    """One item of a work order's checklist: done, not done (with a note), or not yet marked (null)."""

    item: str
    done: bool | None
    note: str | None


class ChecklistMark(Input):
    """An item marked: done true, done false with a note saying why, or done null to unmark it."""

    item: Item
    done: bool | None
    note: str | None = Field(default=None, min_length=1, max_length=2000)


class ChecklistUpdate(Input):
    """Items of the checklist to mark; the others stay as they are."""

    items: list[ChecklistMark] = Field(min_length=1, max_length=100)

    def marks(self) -> list[Mark]:
        """What the service takes."""
        return [Mark(m.item, m.done, m.note) for m in self.items]


class WorkOrderPublic(BaseModel):
    """A work order: its ticket, plan, device, due date, what opened it, its checklist and who did it when."""

    ticket_id: int
    plan_id: int
    site: str
    device_id: str
    device_type: str | None
    due_at: datetime
    trigger: str = Field(description="calendar, counter or running_hours")
    checklist: list[ChecklistEntry]
    unmarked: list[str] = Field(description="items still to mark before the ticket can be resolved")
    done_at: datetime | None
    done_by: str | None


def work_order_public(w: WorkOrder) -> WorkOrderPublic:
    """The API's view of a work order."""
    checklist = [ChecklistEntry(**entry) for entry in w.checklist]
    return WorkOrderPublic(
        ticket_id=w.ticket_id,
        plan_id=w.plan_id,
        site=w.site,
        device_id=w.device_id,
        device_type=w.device_type,
        due_at=w.due_at,
        trigger=w.trigger,
        checklist=checklist,
        unmarked=[e.item for e in checklist if e.done is None],
        done_at=w.done_at,
        done_by=w.done_by,
    )


class MaintenanceRecord(WorkOrderPublic):
    """A job done (§4.1.5): when (done_at), what (the checklist with its notes), who (done_by)."""

    plan: str = Field(description="the plan's name")
    on_plan: bool = Field(description="done on or before its due day")


class OnPlanRate(BaseModel):
    """A site's work orders of one equipment type due in the period, and the share done by their due date."""

    site: str
    device_type: str
    due: int
    on_plan: int
    late: int
    not_done: int
    rate: float | None = Field(description="on_plan ÷ due; null when none was due")


def rate_public(r: OnPlan) -> OnPlanRate:
    """The API's view of one rate."""
    return OnPlanRate(
        site=r.site,
        device_type=r.device_type,
        due=r.due,
        on_plan=r.on_plan,
        late=r.late,
        not_done=r.not_done,
        rate=r.rate,
    )


class Figures(BaseModel):
    """On-plan rates over a period."""

    since: datetime = Field(serialization_alias="from")
    until: datetime = Field(serialization_alias="to")
    rates: list[OnPlanRate]
