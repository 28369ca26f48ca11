"""The §9.1 figures of a period, pure: counted from its rows, every one also per month.

Timing and repeat faults count faults, not planned work: a maintenance ticket is due at its own
date, not at its class's response time. The acknowledge target is the contract's response time for
the class; the resolve target is this product's own (the contract sets none).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from ground.severity import Severity
from maintenance.figures import on_plan_rates
from patrol.evaluation import ENDED
from patrol.report import completion_report
from quality.period import Period, by_month
from quality.rows import AlarmRow, TicketRow
from quality.stats import median, percentile, share
from records.states import CauseClass, Source, VisitStatus

# A device with this many tickets in the period is a repeat offender ("bad actor").
BAD_ACTOR_TICKETS = 3
# Alarm-management practice (EEMUA 191, ISA-18.2): more than 10 alarms in 10 minutes is a flood.
FLOOD_WINDOW = timedelta(minutes=10)
FLOOD_MORE_THAN = 10
TOP_RULES = 10
TARGET_BY = {"acknowledge": "contract", "resolve": "product"}


def faults(rows: Iterable[TicketRow]) -> list[TicketRow]:
    """The rows that are faults: every source but planned maintenance."""
    return [r for r in rows if r.source is not Source.MAINTENANCE]


def _counts(values: Iterable[str], keys: Sequence[str] = ()) -> dict[str, int]:
    found = Counter(values)
    return {**{k: found.get(k, 0) for k in keys}, **{k: found[k] for k in sorted(found) if k not in keys}}


def ticket_counts(rows: Sequence[TicketRow]) -> dict[str, Any]:
    """Tickets by class, source and equipment type (`none` without a device), and those overdue now."""
    return {
        "total": len(rows),
        "by_class": _counts((r.severity.value for r in rows), [s.value for s in Severity]),
        "by_source": _counts((r.source.value for r in rows), [s.value for s in Source]),
        "by_device_type": _counts(r.device_type or "none" for r in rows),
        "overdue_now": sum(r.overdue_now for r in rows),
    }


def _timing(seconds: list[float], within: int, target_s: int, target_by: str) -> dict[str, Any]:
    return {
        "count": len(seconds),
        "median_s": median(seconds),
        "p90_s": percentile(seconds, 90),
        "target_s": target_s,
        "target_by": target_by,
        "within_target": within,
        "share_within_target": share(within, len(seconds)),
    }


def timing(rows: Sequence[TicketRow]) -> list[dict[str, Any]]:
    """Per class: time to acknowledge and to resolve (median, 90th percentile), against the targets."""
    found = []
    for severity in Severity:
        of_class = [r for r in faults(rows) if r.severity is severity]
        acked = [r for r in of_class if r.seconds_to_acknowledge is not None]
        resolved = [r for r in of_class if r.seconds_to_resolve is not None]
        found.append(
            {
                "class": severity.value,
                "tickets": len(of_class),
                "acknowledge": _timing(
                    [r.seconds_to_acknowledge for r in acked if r.seconds_to_acknowledge is not None],
                    sum(bool(r.acknowledged_within_target) for r in acked),
                    severity.response_due_s,
                    TARGET_BY["acknowledge"],
                ),
                "resolve": _timing(
                    [r.seconds_to_resolve for r in resolved if r.seconds_to_resolve is not None],
                    sum(bool(r.resolved_within_target) for r in resolved),
                    severity.resolve_due_s,
                    TARGET_BY["resolve"],
                ),
            }
        )
    return found


def repeat_faults(rows: Sequence[TicketRow], devices_by_type: dict[str, int]) -> dict[str, Any]:
    """Devices with 3 or more fault tickets (with their rules), and faults per 100 devices per type."""
    by_device: dict[tuple[str, str], list[TicketRow]] = {}
    for r in faults(rows):
        if r.device_id is not None:
            by_device.setdefault((r.site, r.device_id), []).append(r)
    bad: list[dict[str, Any]] = [
        {
            "site": site,
            "device_id": device_id,
            "device_type": found[0].device_type,
            "tickets": len(found),
            "rules": sorted({r.rule for r in found if r.rule}),
        }
        for (site, device_id), found in by_device.items()
        if len(found) >= BAD_ACTOR_TICKETS
    ]
    bad.sort(key=lambda b: (-int(b["tickets"]), b["site"], b["device_id"]))
    per_type = Counter(r.device_type for r in faults(rows) if r.device_type)
    per_100 = [
        {
            "device_type": kind,
            "faults": per_type.get(kind, 0),
            "devices": devices_by_type.get(kind, 0),
            "per_100_devices": (
                100 * per_type.get(kind, 0) / devices_by_type[kind] if devices_by_type.get(kind) else None
            ),
        }
        for kind in sorted(set(per_type) | set(devices_by_type))
    ]
    return {"bad_actors": bad, "per_100_devices": per_100}


def busiest_window(times: Sequence[datetime]) -> tuple[datetime | None, int]:
    """The start of the 10 minutes holding the most of `times` (each window starting at one), and how many."""
    ordered = sorted(times)
    best_start, best, first = None, 0, 0
    for last, t in enumerate(ordered):
        while t - ordered[first] >= FLOOD_WINDOW:
            first += 1
        if last - first + 1 > best:
            best_start, best = ordered[first], last - first + 1
    return best_start, best


def alarm_load(alarms: Sequence[AlarmRow], period: Period) -> dict[str, Any]:
    """Alarms per day, each site's busiest 10 minutes (a flood above 10), alarms held, the top 10 rules."""
    zone = period.zone
    days = Counter(a.raised_at.astimezone(zone).date().isoformat() for a in alarms)
    day, per_day = period.since.astimezone(zone).date(), []
    while day < (period.until - timedelta(microseconds=1)).astimezone(zone).date() + timedelta(days=1):
        per_day.append({"day": day.isoformat(), "alarms": days.get(day.isoformat(), 0)})
        day += timedelta(days=1)
    busiest = []
    for site in sorted({a.site for a in alarms}):
        start, count = busiest_window([a.raised_at for a in alarms if a.site == site])
        busiest.append({"site": site, "start": start, "alarms": count, "flood": count > FLOOD_MORE_THAN})
    rules = Counter(a.rule for a in alarms)
    top = sorted(rules.items(), key=lambda item: (-item[1], item[0]))[:TOP_RULES]
    return {
        "total": len(alarms),
        "per_day": per_day,
        "mean_per_day": share(len(alarms), len(per_day)),
        "busiest_10_min": busiest,
        "flood_above": FLOOD_MORE_THAN,
        "held": sum(a.held for a in alarms),
        "top_rules": [{"rule": rule, "alarms": n} for rule, n in top],
    }


def patrol(period: Period) -> dict[str, Any]:
    """Rounds ended and completed, checkpoints on time, late and missed, by route and by guard."""
    report = completion_report(period.rounds, period.since, period.until, None)
    ended = [r for r in period.rounds if r.status in ENDED]
    late: dict[tuple[str, str], int] = Counter()
    for r in ended:
        n = sum(1 for v in r.visits if v.status == VisitStatus.LATE)
        late["route", r.route_id] += n
        for guard in r.guards:
            late["guard", guard] += n
    for key in ("route", "guard"):
        for row in report[f"by_{key}"]:
            row["late"] = late[key, row[key]]
    visits = Counter(v.status for r in ended for v in r.visits)
    return {
        "rounds": len(ended),
        "completed": sum(1 for r in ended if r.status == "completed"),
        "checkpoints": sum(visits.values()),
        "on_time": visits[VisitStatus.ON_TIME],
        "late": visits[VisitStatus.LATE],
        "missed": visits[VisitStatus.MISSED],
        "other": sum(visits.values())
        - visits[VisitStatus.ON_TIME]
        - visits[VisitStatus.LATE]
        - visits[VisitStatus.MISSED],
        "by_route": report["by_route"],
        "by_guard": report["by_guard"],
    }


def maintenance(period: Period) -> dict[str, Any]:
    """Work orders due in the period done on plan (by their due day), in all and per equipment type."""
    rates = on_plan_rates(period.work_orders, period.zone)
    due = sum(r.due for r in rates)
    on_plan = sum(r.on_plan for r in rates)
    return {
        "due": due,
        "on_plan": on_plan,
        "late": sum(r.late for r in rates),
        "not_done": sum(r.not_done for r in rates),
        "on_plan_rate": share(on_plan, due),
        "by_type": [{**asdict(r), "on_plan_rate": r.rate} for r in rates],
    }


def occupants(rows: Sequence[TicketRow]) -> dict[str, Any]:
    """Occupants' reports, time to close them, their satisfaction scores and the share satisfied (4 or 5)."""
    reports = [r for r in rows if r.source is Source.OCCUPANT]
    close = [r.seconds_to_close for r in reports if r.seconds_to_close is not None]
    scores = [r.satisfaction for r in reports if r.satisfaction is not None]
    satisfied = sum(bool(r.satisfied) for r in reports)
    return {
        "reports": len(reports),
        "closed": len(close),
        "close_median_s": median(close),
        "close_p90_s": percentile(close, 90),
        "scored": len(scores),
        "mean_score": sum(scores) / len(scores) if scores else None,
        "scores": {str(n): scores.count(n) for n in range(1, 6)},
        "satisfied": satisfied,
        "share_satisfied": share(satisfied, len(scores)),
    }


def cause_classes(rows: Sequence[TicketRow]) -> dict[str, Any]:
    """Resolved faults by cause class (§9.2.1): process, staff, equipment, external, and not classed."""
    resolved = [r for r in faults(rows) if r.resolved_at is not None]
    counts = _counts((r.cause_class or "unclassed" for r in resolved), [c.value for c in CauseClass])
    return {"resolved": len(resolved), "by_class": {**counts, "unclassed": counts.get("unclassed", 0)}}


def figures(period: Period) -> dict[str, Any]:
    """Every figure of the period."""
    return {
        "from": period.since,
        "to": period.until,
        "tickets": ticket_counts(period.tickets),
        "timing": timing(period.tickets),
        "repeat_faults": repeat_faults(period.tickets, period.devices_by_type),
        "alarms": alarm_load(period.alarms, period),
        "patrol": patrol(period),
        "maintenance": maintenance(period),
        "occupants": occupants(period.tickets),
        "cause_classes": cause_classes(period.tickets),
    }


def quality_figures(period: Period, sites: Sequence[str] | None) -> dict[str, Any]:
    """The period's figures, and the same for each of its months (in the site's time zone)."""
    monthly = [
        {"month": p.since.astimezone(p.zone).strftime("%Y-%m"), **figures(p)} for p in by_month(period)
    ]
    return {
        "sites": sites,
        "zone": period.zone.key,
        "percentile": "nearest rank",
        **figures(period),
        "months": monthly,
    }
