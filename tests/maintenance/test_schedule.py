"""Calendar due dates: ISO 8601 periods counted whole from their anchor, the month-end rule, lead times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from maintenance.schedule import Period, PeriodError, calendar_due


def at(day: str) -> datetime:
    """Midnight UTC of an ISO date."""
    return datetime.fromisoformat(day).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "period"),
    [
        ("P15D", (0, 15)),
        ("P1M", (1, 0)),
        ("P3M", (3, 0)),
        ("P1Y", (12, 0)),
        ("P2W", (0, 14)),
        ("P1Y6M", (18, 0)),
    ],
)
def test_periods_read_as_months_and_days(text: str, period: tuple[int, int]) -> None:
    assert Period.parse(text) == period


@pytest.mark.parametrize("text", ["", "P", "P0D", "1M", "PT1H", "P1.5M", "p1m", "P1M1Y", "P200Y"])
def test_other_periods_are_refused(text: str) -> None:
    with pytest.raises(PeriodError):
        Period.parse(text)


def test_a_month_from_the_31st_is_the_end_of_every_month_and_never_drifts() -> None:
    month = Period.parse("P1M")
    dues = [month.times(at("2027-01-31"), n).date().isoformat() for n in range(6)]
    assert dues == ["2027-01-31", "2027-02-28", "2027-03-31", "2027-04-30", "2027-05-31", "2027-06-30"]
    assert Period.parse("P1Y").times(at("2028-02-29"), 1) == at("2029-02-28")


def test_due_dates_open_their_lead_ahead_and_only_once() -> None:
    month, lead = Period.parse("P1M"), timedelta(days=3)
    created = at("2027-01-01")
    due = calendar_due(at("2027-01-31"), month, lead, at("2027-01-27"), created, None, None)
    assert due == []
    due = calendar_due(at("2027-01-31"), month, lead, at("2027-01-28"), created, None, None)
    assert due == [at("2027-01-31")]
    again = calendar_due(at("2027-01-31"), month, lead, at("2027-02-20"), created, at("2027-01-31"), None)
    assert again == []
    # A service down for two months opens both due dates it missed.
    late = calendar_due(at("2027-01-31"), month, lead, at("2027-04-01"), created, at("2027-01-31"), None)
    assert late == [at("2027-02-28"), at("2027-03-31")]


def test_a_plan_entered_late_opens_only_its_latest_past_due_date() -> None:
    month = Period.parse("P1M")
    due = calendar_due(at("2026-01-15"), month, timedelta(0), at("2026-06-20"), at("2026-06-20"), None, None)
    assert due == [at("2026-06-15")]


def test_a_job_by_use_restarts_the_calendar() -> None:
    month = Period.parse("P1M")
    by_use = at("2027-02-10")
    due = calendar_due(
        at("2027-01-01"), month, timedelta(0), at("2027-03-01"), at("2027-01-01"), at("2027-01-01"), by_use
    )
    assert due == []
    due = calendar_due(
        at("2027-01-01"), month, timedelta(0), at("2027-03-10"), at("2027-01-01"), at("2027-01-01"), by_use
    )
    assert due == [at("2027-03-10")]
