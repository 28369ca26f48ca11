"""Service quality figures (manual §9.1) of a period, as JSON or as the CSV of the tickets behind them."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from api.auth import STAFF, Caller, allow
from api.errors import invalid, problem
from api.schemas import SITE_OR_DEVICE
from api.sites import mine_or_403
from ground.clock import as_utc
from patrol.service import EARLIEST, LATEST
from quality.figures import quality_figures
from quality.records import QualityRecords
from quality.rows import tickets_csv

router = APIRouter(prefix="/reports", tags=["reports"])
# A year and its month either side: enough for a trend, bounded for the database.
LONGEST = timedelta(days=430)


async def _records(request: Request) -> QualityRecords:
    records: QualityRecords = request.app.state.quality
    return records


def _when(t: datetime | None, name: str) -> datetime | None:
    """A time, UTC unless it says otherwise; 422 outside the years 2000 to 8999."""
    if t is None:
        return None
    t = as_utc(t)
    if not EARLIEST <= t < LATEST:
        raise invalid(["query", name], "times run from the year 2000 to 8999")
    return t


@router.get(
    "/quality",
    responses={
        200: {"content": {"text/csv": {}}, "description": "the figures, or with format=csv the tickets"},
        403: problem("a site that is not one of the caller's"),
    },
)
def quality(
    records: Annotated[QualityRecords, Depends(_records)],
    caller: Annotated[Caller, Depends(allow(*STAFF))],
    site: Annotated[
        str | None, Query(pattern=SITE_OR_DEVICE, description="default: every site of yours")
    ] = None,
    since: Annotated[datetime | None, Query(alias="from", description="default: 30 days before `to`")] = None,
    until: Annotated[datetime | None, Query(alias="to", description="default: now")] = None,
    format: Annotated[
        Literal["json", "csv"], Query(description="csv: the tickets behind the figures")
    ] = "json",
) -> Any:
    """Tickets, times against targets, repeat faults, alarms, patrols, maintenance, occupants, per month."""
    if site is not None:
        mine_or_403(caller, site)
    end = _when(until, "to") or records.clock()
    start = _when(since, "from") or end - timedelta(days=30)
    if not start < end:
        raise invalid(["query", "from"], "`from` must be before `to`")
    if end - start > LONGEST:
        raise invalid(["query", "from"], f"a period of at most {LONGEST.days} days")
    sites = caller.visible(site)
    period = records.period(sites, start, end)
    if format == "csv":
        headers = {"Content-Disposition": 'attachment; filename="quality-tickets.csv"'}
        return Response(tickets_csv(period.tickets), media_type="text/csv; charset=utf-8", headers=headers)
    return quality_figures(period, sorted(sites) if sites is not None else None)
