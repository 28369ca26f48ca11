"""What a fault scenario must make of the service: the alarm tickets it opens, and its alarms at the end."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from ground.datafiles import RULE_ID, Checker, Place
from ground.severity import Severity

_EXPECT_KEYS = ("tickets", "alarms")
_TICKET_KEYS = ("device_id", "class", "rules", "occurrences")
_ALARM_KEYS = ("device_id", "rule", "active", "raised", "count")


@dataclass(frozen=True, slots=True)
class ExpectedTicket:
    """An alarm ticket the story must open on a device, its final class and the rules that fed it."""

    device_id: str
    severity: Severity
    rules: frozenset[str]
    occurrences: int | None = None


@dataclass(frozen=True, slots=True)
class ExpectedAlarm:
    """What one rule's alarms on a device must look like at the end; None: not checked."""

    device_id: str
    rule: str
    active: bool | None = None
    raised: int | None = None  # alarm records: 1 + the times it was raised again after clearing
    count: int | None = None  # raises the last record absorbed while active


def expectations(
    check: Checker, at: Place, value: Any, devices: Collection[str]
) -> tuple[tuple[ExpectedTicket, ...], tuple[ExpectedAlarm, ...]]:
    """The `expect` section at `at`, its devices among `devices`; problems go to `check`."""
    if not check.mapping(at, value, _EXPECT_KEYS, ("tickets",)):
        return (), ()
    before = len(check.problems)
    tickets = _tickets(check, at / "tickets", value["tickets"], devices)
    tickets_ok = len(check.problems) == before
    # Alarms are checked against the tickets only once those are right.
    alarms = _alarms(check, at / "alarms", value.get("alarms", []), devices, tickets if tickets_ok else None)
    return tuple(tickets.values()), alarms


def _tickets(check: Checker, at: Place, items: Any, devices: Collection[str]) -> dict[str, ExpectedTicket]:
    tickets: dict[str, ExpectedTicket] = {}
    if not isinstance(items, list):
        check.add(at, "must be a list (empty: no ticket)")
        items = []
    for i, item in enumerate(items):
        where = at[i]
        if not check.mapping(where, item, _TICKET_KEYS, ("device_id", "class", "rules")):
            continue
        device_id = _device(check, where / "device_id", item["device_id"], devices)
        if device_id is not None and device_id in tickets:
            check.add(where / "device_id", f"{device_id!r} listed twice: a device has one alarm ticket")
            device_id = None
        severity = check.severity(where / "class", item["class"])
        rules = _rule_ids(check, where / "rules", item["rules"])
        occurrences = _positive(check, where, item, "occurrences")
        if device_id is not None and severity is not None and rules is not None:
            tickets[device_id] = ExpectedTicket(device_id, severity, rules, occurrences)
    return tickets


def _alarms(
    check: Checker,
    at: Place,
    items: Any,
    devices: Collection[str],
    tickets: Mapping[str, ExpectedTicket] | None,
) -> tuple[ExpectedAlarm, ...]:
    alarms: list[ExpectedAlarm] = []
    if not isinstance(items, list):
        check.add(at, "must be a list")
        items = []
    seen: set[tuple[str, str]] = set()
    for i, item in enumerate(items):
        where = at[i]
        if not check.mapping(where, item, _ALARM_KEYS, ("device_id", "rule")):
            continue
        device_id = _device(check, where / "device_id", item["device_id"], devices)
        rule = check.matching(where / "rule", item["rule"], RULE_ID, "{value!r} is not a rule id")
        if rule is None:
            continue
        active = item.get("active")
        if active is not None:
            check.flag(where / "active", active)
        raised = _positive(check, where, item, "raised")
        count = _positive(check, where, item, "count")
        if device_id is None or tickets is None:
            continue
        ticket = tickets.get(device_id)
        if ticket is None or rule not in ticket.rules:
            check.add(where, f"{device_id}/{rule} is not among the rules of expect.tickets for {device_id}")
        elif (device_id, rule) in seen:
            check.add(where, f"{device_id}/{rule} listed twice")
        else:
            seen.add((device_id, rule))
            alarms.append(ExpectedAlarm(device_id, rule, active, raised, count))
    return tuple(alarms)


def _device(check: Checker, at: Place, value: Any, devices: Collection[str]) -> str | None:
    if not isinstance(value, str) or value not in devices:
        check.add(at, f"unknown device {value!r} (not in devices)")
        return None
    return value


def _rule_ids(check: Checker, at: Place, value: Any) -> frozenset[str] | None:
    if not isinstance(value, list) or not value:
        check.add(at, "must be a non-empty list of rule ids")
        return None
    bad = [r for r in value if not isinstance(r, str) or not RULE_ID.fullmatch(r)]
    if bad:
        check.add(at, f"not rule ids: {', '.join(repr(r) for r in bad)}")
        return None
    if len(set(value)) != len(value):
        check.add(at, "a rule is listed twice")
        return None
    return frozenset(value)


def _positive(check: Checker, at: Place, item: Mapping[str, Any], key: str) -> int | None:
    value = item.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        check.add(at / key, f"{value!r} is not a whole number ≥ 1")
        return None
    return value
