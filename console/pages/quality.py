"""The monthly service quality report of a site (§9.1): a printable page, its CSV, and the HTML for a PDF."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse, Response

from accounts.roles import Role
from console import charts
from console.i18n import choose, translator
from console.pages.tickets import visible_sites
from console.session import Visitor, signed_in
from console.web import HERE, render, templates
from quality.monthly import MONTH, MonthlyReport, monthly_report
from quality.records import QualityRecords
from quality.rows import month_of, tickets_csv

router = APIRouter()
REPORT_CSS = HERE / "static" / "report.css"
# Managers' and engineers' figures (the API's rule); guards and the front desk have pages of their own.
READERS = (Role.ADMIN, Role.MANAGER, Role.ENGINEER)


def reads_quality(visitor: Visitor) -> bool:
    """Whether the visitor may read the quality figures."""
    return visitor.role in READERS


def duration(seconds: float | None) -> str:
    """A time taken, in the unit that reads best: minutes, hours or days."""
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def percent(value: float | None) -> str:
    """A share as a whole percentage, or a dash when there was nothing to share."""
    return "—" if value is None else f"{100 * value:.0f} %"


def context(report: MonthlyReport, language: str, zone: ZoneInfo) -> dict[str, Any]:
    """What the report's templates read: the report, its charts, and the helpers for numbers and times."""
    t = translator(language)
    f = report.figures
    return {
        "report": report,
        "f": f,
        "trend_chart": charts.trend(report.trend, t("q_trend")),
        "mix_chart": charts.class_mix(f["tickets"]["by_class"], t("q_mix"), t),
        "resolve_chart": charts.resolve_against_target(f["timing"], t("q_resolve_chart"), t),
        "duration": duration,
        "percent": percent,
        "zone": zone.key,
        "at": lambda when: when.astimezone(zone).strftime("%Y-%m-%d %H:%M") if when else "—",
    }


def printable(report: MonthlyReport, language: str, zone: ZoneInfo) -> str:
    """The report as one self-contained HTML document (its style inline), for printing to PDF."""
    template = templates().env.get_template("monthly_print.html")
    return template.render(
        t=translator(language),
        lang=language,
        css=Path(REPORT_CSS).read_text(),
        **context(report, language, zone),
    )


def _report(request: Request, visitor: Visitor, site: str | None, month: str | None) -> MonthlyReport:
    if not reads_quality(visitor):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"role {visitor.role.value} does not read the figures")
    records: QualityRecords = request.app.state.quality
    sites = visible_sites(request, visitor)
    site = site or (sites[0] if sites else None)
    if site is None or not visitor.caller.sees(site):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no site {site}")
    month = month or month_of(records.clock(), records.zone)
    if not MONTH.fullmatch(month):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "month: give it as YYYY-MM")
    return monthly_report(records, site, month)


Site = Annotated[str | None, Query(max_length=64)]
Month = Annotated[str | None, Query(max_length=7)]


@router.get("/reports/monthly", response_class=HTMLResponse)
def monthly_page(
    request: Request, visitor: Annotated[Visitor, Depends(signed_in)], site: Site = None, month: Month = None
) -> HTMLResponse:
    """The month's figures with charts, the repeat faults, what is overdue, and a line to sign."""
    report = _report(request, visitor, site, month)
    records: QualityRecords = request.app.state.quality
    language = choose(request)
    return render(
        request,
        "monthly.html",
        visitor,
        sites=visible_sites(request, visitor),
        **context(report, language, records.zone),
    )


@router.get("/reports/monthly.csv")
def monthly_csv(
    request: Request, visitor: Annotated[Visitor, Depends(signed_in)], site: Site = None, month: Month = None
) -> Response:
    """The month's tickets behind the figures, one row each, for a spreadsheet."""
    report = _report(request, visitor, site, month)
    name = f"quality-{report.site}-{report.month}.csv"
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    return Response(tickets_csv(report.rows), media_type="text/csv; charset=utf-8", headers=headers)
