"""When calendar maintenance falls due: ISO 8601 periods and the due dates of a plan on one device.

Pure. A period (`P15D`, `P1M`, `P3M`, `P1Y`, `P2W`, `P1Y6M`) is counted from an anchor as a whole:
the n-th due date is the anchor plus n periods, a day of the month the month lacks becoming its
last day. So a plan first due on 31 January falls due on 28 (or 29) February, 31 March, 30 April:
the end of every month, never drifting to the 28th.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import NamedTuple

_PERIOD = re.compile(r"P(?:(\d{1,3})Y)?(?:(\d{1,4})M)?(?:(\d{1,4})W)?(?:(\d{1,5})D)?")
# A plan's due dates are looked for this many periods ahead at most: a daily plan over 27 years.
MAX_STEPS = 10_000


class PeriodError(ValueError):
    """A period that cannot be read; the message says what is wrong with it."""


class Period(NamedTuple):
    """An ISO 8601 period of whole months and days."""

    months: int
    days: int

    @classmethod
    def parse(cls, text: str) -> Period:
        """`P15D`, `P1M`, `P3M`, `P1Y`, `P2W`, `P1Y6M`: years, months, weeks and days, no time part."""
        match = _PERIOD.fullmatch(text) if isinstance(text, str) else None
        if match is None or text == "P":
            raise PeriodError(
                f"{text!r} is not an ISO 8601 period of years, months, weeks or days, like P15D, P1M, P1Y"
            )
        years, months, weeks, days = (int(g) if g else 0 for g in match.groups())
        period = cls(years * 12 + months, weeks * 7 + days)
        if period == (0, 0):
            raise PeriodError(f"{text!r} is no time at all")
        if period.months > 1200 or period.days > 36_600:
            raise PeriodError(f"{text!r} is longer than 100 years")
        return period

    def times(self, start: datetime, n: int) -> datetime:
        """`start` plus `n` of these periods; a day the month lacks becomes its last."""
        month0 = start.month - 1 + self.months * n
        year, month = start.year + month0 // 12, month0 % 12 + 1
        day = min(start.day, calendar.monthrange(year, month)[1])
        return start.replace(year=year, month=month, day=day) + timedelta(days=self.days * n)


def due_dates(anchor: datetime, period: Period, first: int) -> Iterator[datetime]:
    """The anchor plus `first`, `first + 1`, … periods (at most MAX_STEPS of them)."""
    for n in range(first, first + MAX_STEPS):
        try:
            yield period.times(anchor, n)
        except (OverflowError, ValueError):  # past the year 9999
            return


def calendar_due(
    first_due: datetime,
    period: Period,
    lead: timedelta,
    now: datetime,
    created_at: datetime,
    last_calendar: datetime | None,
    last_by_use: datetime | None,
) -> list[datetime]:
    """The due dates of one device whose work orders should be open by `now`, oldest first.

    A work order opens `lead` before its due date. A job by use (a counter or running hours)
    restarts the calendar: the next calendar job is one period after it, so whichever of calendar
    and use comes first sets the next one. Due dates already opened (up to `last_calendar`) are
    skipped; of those before the plan existed only the latest is opened: it is still to be done,
    the ones before it were never asked of anyone.
    """
    anchor, first = (first_due, 0) if last_by_use is None else (last_by_use, 1)
    found: list[datetime] = []
    for due in due_dates(anchor, period, first):
        if due - lead > now:
            break
        if last_calendar is not None and due <= last_calendar:
            continue
        if found and found[-1] < created_at and due < created_at:
            found.pop()  # a later due date before the plan existed replaces it
        found.append(due)
    return found
