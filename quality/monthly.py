"""A site's monthly report (§9.1.3): the month's figures, the 12 months' trend to it, what is overdue."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from quality.figures import quality_figures
from quality.period import month_start, next_month
from quality.records import QualityRecords
from quality.rows import TicketRow

MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
TREND_MONTHS = 12


@dataclass(frozen=True)
class MonthlyReport:
    """What the report of one site and month shows."""

    site: str
    month: str
    generated_at: datetime
    figures: dict[str, Any]  # the month's
    trend: list[dict[str, Any]]  # the figures of each of the 12 months to it, oldest first
    rows: list[TicketRow]  # the month's tickets, behind its figures
    overdue: list[TicketRow]  # open now past their response time, whenever opened


def months_back(month: str, count: int) -> str:
    """The month `count` months before `month` (YYYY-MM)."""
    year, number = (int(part) for part in month.split("-"))
    index = year * 12 + number - 1 - count
    return f"{index // 12}-{index % 12 + 1:02d}"


def monthly_report(records: QualityRecords, site: str, month: str) -> MonthlyReport:
    """The report of `site` for `month` (YYYY-MM, in the site's time zone)."""
    if not MONTH.fullmatch(month):
        raise ValueError(f"month {month!r}: give it as YYYY-MM")
    zone = records.zone
    first = months_back(month, TREND_MONTHS - 1)
    since, until = month_start(first, zone), month_start(next_month(month), zone)
    period = records.period(frozenset({site}), since, until)
    everything = quality_figures(period, [site])
    trend = everything["months"]
    this = trend[-1]
    rows = [r for r in period.tickets if r.month == month]
    return MonthlyReport(site, month, records.clock(), this, trend, rows, records.overdue(frozenset({site})))
