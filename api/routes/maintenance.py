"""Maintenance (§4.1): plans, contractors, work orders' checklists, the record of jobs done, on-plan figures.

Work orders are tickets (source `maintenance`): listed and acted on under /tickets.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response, status

from api.auth import STAFF, Caller, Role, allow
from api.errors import invalid, problem
from api.maintenance_schemas import (
    ChecklistUpdate,
    ContractorCreate,
    ContractorPublic,
    ContractorUpdate,
    Figures,
    MaintenanceRecord,
    PlanCreate,
    PlanPublic,
    WorkOrderPublic,
    contractor_public,
    plan_public,
    rate_public,
    work_order_public,
)
from api.schemas import MAX_ID, SITE_OR_DEVICE
from api.sites import mine_or_403, seen_or_404
from ground.clock import as_utc
from maintenance.figures import done_on_plan
from maintenance.service import Conflict, MaintenanceError, MaintenanceService, NotFound

router = APIRouter(
    prefix="/maintenance",
    tags=["maintenance"],
    responses={503: problem("maintenance is not served by this service")},
)
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)
Site = Annotated[str | None, Query(pattern=SITE_OR_DEVICE)]
PlanId = Annotated[int, Path(ge=1, le=MAX_ID)]
TicketId = Annotated[int, Path(ge=1, le=MAX_ID)]
ContractorId = Annotated[str, Path(pattern=SITE_OR_DEVICE)]
Reader = Annotated[Caller, Depends(allow(*STAFF))]
Manager = Annotated[Caller, Depends(allow(Role.MANAGER))]


async def _maintenance(request: Request) -> MaintenanceService:
    service: MaintenanceService | None = request.app.state.maintenance
    if service is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "maintenance is not served here")
    return service


Maintenance = Annotated[MaintenanceService, Depends(_maintenance)]


def _every_site(caller: Caller) -> None:
    """403 for a caller limited to sites: a contractor serves the plans of every site."""
    if caller.sites is not None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "contractors serve every site: a manager of all sites")


@contextmanager
def _answers() -> Iterator[None]:
    """The maintenance records' refusals as HTTP: 404 missing, 409 conflicting, 422 with the field."""
    try:
        yield
    except NotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except Conflict as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    except MaintenanceError as exc:
        raise invalid(["body", *exc.path], str(exc)) from None


def _when(t: datetime | None, loc: list[str | int]) -> datetime | None:
    """A time, UTC unless it says otherwise; 422 outside the years 2000 to 8999."""
    if t is None:
        return None
    t = as_utc(t)
    if not EARLIEST <= t < LATEST:
        raise invalid(loc, "times run from the year 2000 to 8999")
    return t


# --- plans ------------------------------------------------------------------------------------


@router.post("/plans", response_model=PlanPublic, status_code=status.HTTP_201_CREATED)
def add_plan(body: PlanCreate, maintenance: Maintenance, caller: Manager) -> PlanPublic:
    """A plan; a work order that has come due opens at once, the next ones on time (§4.1.1)."""
    mine_or_403(caller, body.site)
    first_due = _when(body.first_due, ["body", "first_due"])
    with _answers():
        return plan_public(maintenance.add_plan(body.spec(first_due)))


@router.get("/plans", response_model=list[PlanPublic])
def list_plans(maintenance: Maintenance, caller: Reader, site: Site = None) -> list[PlanPublic]:
    """Plans, of one site or all of the caller's."""
    return [plan_public(p) for p in caller.only_visible(maintenance.plans(site))]


@router.get("/plans/{plan_id}", response_model=PlanPublic)
def get_plan(plan_id: PlanId, maintenance: Maintenance, caller: Reader) -> PlanPublic:
    """One plan."""
    with _answers():
        found = maintenance.plan(plan_id)
    seen_or_404(caller, found.site, f"plan {plan_id}")
    return plan_public(found)


@router.put("/plans/{plan_id}", response_model=PlanPublic)
def update_plan(plan_id: PlanId, body: PlanCreate, maintenance: Maintenance, caller: Manager) -> PlanPublic:
    """Change a plan (a first_due left out keeps the plan's); work orders opened stay as they are."""
    first_due = _when(body.first_due, ["body", "first_due"])
    with _answers():
        seen_or_404(caller, maintenance.plan(plan_id).site, f"plan {plan_id}")
        mine_or_403(caller, body.site)
        return plan_public(maintenance.update_plan(plan_id, body.spec(first_due)))


@router.delete(
    "/plans/{plan_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={409: problem("the plan has work orders, which are kept as the maintenance record")},
)
def delete_plan(plan_id: PlanId, maintenance: Maintenance, caller: Manager) -> Response:
    """Remove a plan that has opened no work order."""
    with _answers():
        seen_or_404(caller, maintenance.plan(plan_id).site, f"plan {plan_id}")
        maintenance.delete_plan(plan_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- contractors ------------------------------------------------------------------------------


@router.post("/contractors", response_model=ContractorPublic, status_code=status.HTTP_201_CREATED)
def add_contractor(body: ContractorCreate, maintenance: Maintenance, caller: Manager) -> ContractorPublic:
    """A licensed contractor (§4.1.4); a licence expiring within 30 days opens a ticket for the manager."""
    _every_site(caller)
    with _answers():
        return contractor_public(maintenance.add_contractor(body.id, body.spec()))


@router.get("/contractors", response_model=list[ContractorPublic])
def list_contractors(maintenance: Maintenance, caller: Reader) -> list[ContractorPublic]:
    """Every contractor."""
    return [contractor_public(c) for c in maintenance.contractors()]


@router.get("/contractors/{contractor_id}", response_model=ContractorPublic)
def get_contractor(contractor_id: ContractorId, maintenance: Maintenance, caller: Reader) -> ContractorPublic:
    """One contractor."""
    with _answers():
        return contractor_public(maintenance.contractor(contractor_id))


@router.put("/contractors/{contractor_id}", response_model=ContractorPublic)
def update_contractor(
    contractor_id: ContractorId, body: ContractorUpdate, maintenance: Maintenance, caller: Manager
) -> ContractorPublic:
    """Change a contractor; the plans that name it must stay covered by its licence."""
    _every_site(caller)
    with _answers():
        return contractor_public(maintenance.update_contractor(contractor_id, body.spec()))


@router.delete(
    "/contractors/{contractor_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={409: problem("a plan names the contractor")},
)
def delete_contractor(contractor_id: ContractorId, maintenance: Maintenance, caller: Manager) -> Response:
    """Remove a contractor no plan names."""
    _every_site(caller)
    with _answers():
        maintenance.delete_contractor(contractor_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- work orders ------------------------------------------------------------------------------


@router.get("/work-orders/{ticket_id}", response_model=WorkOrderPublic)
def get_work_order(ticket_id: TicketId, maintenance: Maintenance, caller: Reader) -> WorkOrderPublic:
    """The work order a ticket is: its plan, due date, checklist, and who did it when."""
    with _answers():
        found = maintenance.work_order(ticket_id)
    seen_or_404(caller, found.site, f"work order {ticket_id}")
    return work_order_public(found)


@router.put(
    "/work-orders/{ticket_id}/checklist",
    response_model=WorkOrderPublic,
    responses={409: problem("the work order is resolved or closed: its record stays as it was")},
)
def mark_checklist(
    ticket_id: TicketId, body: ChecklistUpdate, maintenance: Maintenance, caller: Reader
) -> WorkOrderPublic:
    """Mark items done, or not done with a note saying why; the ticket resolves once every item is marked."""
    with _answers():
        seen_or_404(caller, maintenance.work_order(ticket_id).site, f"work order {ticket_id}")
        return work_order_public(maintenance.mark(ticket_id, body.marks(), caller.name))


@router.get("/records", response_model=list[MaintenanceRecord])
def records(
    maintenance: Maintenance,
    caller: Reader,
    site: Site = None,
    device_id: Annotated[str | None, Query(pattern=SITE_OR_DEVICE)] = None,
    since: Annotated[datetime | None, Query(alias="from", description="done at or after")] = None,
    until: Annotated[datetime | None, Query(alias="to", description="done before")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> list[MaintenanceRecord]:
    """Jobs done, newest first (§4.1.5): when, what (the checklist with its notes) and who."""
    start, end = _when(since, ["query", "from"]), _when(until, ["query", "to"])
    done = maintenance.history(caller.visible(site), site, device_id, start, end, limit)
    return [
        MaintenanceRecord(
            **work_order_public(order).model_dump(), plan=name, on_plan=done_on_plan(order, maintenance.zone)
        )
        for order, name in done
    ]


@router.get("/figures", response_model=Figures)
def figures(
    maintenance: Maintenance,
    caller: Reader,
    site: Site = None,
    since: Annotated[datetime | None, Query(alias="from", description="default: 30 days before `to`")] = None,
    until: Annotated[datetime | None, Query(alias="to", description="default: now")] = None,
) -> Figures:
    """On-plan rate per site and equipment type: work orders done by their due date ÷ due in [from, to)."""
    end = _when(until, ["query", "to"]) or maintenance.clock()
    start = _when(since, ["query", "from"]) or end - timedelta(days=30)
    rates = maintenance.figures(caller.visible(site), start, end)
    return Figures(since=start, until=end, rates=[rate_public(r) for r in rates])
