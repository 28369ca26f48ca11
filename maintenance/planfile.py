"""The plans file (`facility maintenance load FILE`): contractors and plans in YAML, every problem named.

```yaml
version: 1
contractors:
  - {id: c-lift, name: Lift Co, licence_number: TS-1, licence_expires: 2027-06-30,
     equipment_types: [elevator]}
plans:
  - site: site-01
    name: Lift service
    device_type: elevator
    items: [brakes, door operator, ropes]
    every: P15D            # ISO 8601: P15D, P1M, P3M, P1Y
    first_due: 2026-12-01  # a date, a time, `today`, or left out: due lead_days after it is loaded
    lead_days: 0
    counter: {metric: run_count, every: 50000}
    contractor: c-lift
```

A plan is known by its site and name, a contractor by its id: loading a file again updates them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

from ground.contract import SITE_OR_DEVICE_ID
from ground.datafiles import Checker, Place, ProblemsError, read_yaml
from maintenance.records import ContractorSpec, PlanSpec
from maintenance.schedule import Period, PeriodError
from maintenance.usage import UseRule

FORMAT_VERSION = 1
EXAMPLE = Path(__file__).parent / "example_plans.yaml"

_TOP_KEYS = ("version", "contractors", "plans")
_CONTRACTOR_KEYS = ("id", "name", "licence_number", "licence_expires", "equipment_types")
_PLAN_KEYS = (
    "site",
    "name",
    "device_ids",
    "device_type",
    "building",
    "items",
    "every",
    "first_due",
    "lead_days",
    "counter",
    "running_hours",
    "responsible",
    "contractor",
)
_USE_KEYS = ("metric", "every")
_METRIC = re.compile(r"[a-z][a-z0-9_]*")
_ROOT = Place()


class PlanFileError(ProblemsError):
    """A plans file that cannot be loaded; `problems` names every fault with its item and field."""


@dataclass(frozen=True)
class PlanFile:
    """What a checked plans file holds."""

    contractors: list[tuple[str, ContractorSpec]]
    plans: list[PlanSpec]


def field_of(at: Place) -> str:
    """A place as the plans file's problems name it: `plan 'Lift service' (#1), field 'every'`."""
    field = f"field {at.field!r}" if at.field else "the item"
    return f"{at.item}, {field}" if at.item else field


class _PlanChecker(Checker):
    """Builds the file's contents from the parsed document, collecting every problem on the way."""

    def __init__(self, today: date) -> None:
        super().__init__(field_of)
        self.today = today

    def document(self, doc: Any) -> PlanFile | None:
        if not isinstance(doc, dict):
            self.add(_ROOT / "(file)", "the plans file is a mapping with version, contractors and plans")
            return None
        self.unknown_keys(_ROOT, doc, _TOP_KEYS)
        if doc.get("version") != FORMAT_VERSION:
            self.add(
                _ROOT / "version", f"{doc.get('version')!r}: this program reads version {FORMAT_VERSION}"
            )
        contractors = self.items_of(doc, "contractors", "contractor", "id", self.contractor)
        plans = self.items_of(doc, "plans", "plan", "name", self.plan)
        self.same_names(doc.get("plans"))
        ids = [cid for cid, _ in contractors]
        for cid in {c for c in ids if ids.count(c) > 1}:
            self.add((_ROOT / "contractors").named(f"contractor {cid!r}") / "id", "given twice")
        return None if self.problems else PlanFile(contractors, plans)

    def same_names(self, plans: Any) -> None:
        """A plan is known by its site and name: two of one site with one name would be one plan."""
        seen: dict[tuple[str, str], int] = {}
        for n, item in enumerate(plans if isinstance(plans, list) else [], 1):
            site, name = (item.get("site"), item.get("name")) if isinstance(item, dict) else (None, None)
            if not isinstance(site, str) or not isinstance(name, str):
                continue
            key = (site, name)
            if key in seen:
                at = (_ROOT / "plans")[n - 1].named(f"plan {key[1]!r} (#{n})")
                self.add(at / "name", f"another plan of {key[0]} has this name (#{seen[key]})")
            seen.setdefault(key, n)

    def items_of(self, doc: dict[str, Any], key: str, what: str, label: str, build: Any) -> list[Any]:
        items = doc.get(key, [])
        if not isinstance(items, list):
            self.add(_ROOT / key, f"a list of {what}s")
            return []
        out = []
        for n, item in enumerate(items, 1):
            name = item.get(label) if isinstance(item, dict) else None
            at = (_ROOT / key)[n - 1].named(
                f"{what} {name!r} (#{n})" if isinstance(name, str) else f"{what} #{n}"
            )
            if not isinstance(item, dict):
                self.add(at, f"a {what} is a mapping")
                continue
            built = build(at, item)
            if built is not None:
                out.append(built)
        return out

    def text(self, at: Place, value: Any, required: bool = True, limit: int = 200) -> str | None:
        if value is None and not required:
            return None
        if not isinstance(value, str) or not value.strip() or len(value) > limit:
            self.add(
                at,
                f"required: text of 1 to {limit} characters"
                if value is None
                else f"{value!r} is not text of 1 to {limit} characters",
            )
            return None
        return value.strip()

    def contractor(self, at: Place, item: dict[str, Any]) -> tuple[str, ContractorSpec] | None:
        before = len(self.problems)
        self.unknown_keys(at, item, _CONTRACTOR_KEYS)
        cid = self.matching(
            at / "id", item.get("id"), SITE_OR_DEVICE_ID, "required, an id like c-lift; got {value!r}"
        )
        name = self.text(at / "name", item.get("name"))
        number = self.text(at / "licence_number", item.get("licence_number"), limit=100)
        expires = item.get("licence_expires")
        if not isinstance(expires, date) or isinstance(expires, datetime) or not 2000 <= expires.year < 9000:
            self.add(at / "licence_expires", f"{expires!r} is not a date like 2027-06-30")
            expires = None
        types = item.get("equipment_types")
        if not isinstance(types, list) or not types:
            self.add(at / "equipment_types", "required: a list of device types")
            types = []
        checked = [self.device_type(at / "equipment_types" / str(t), t) for t in types]
        if len(self.problems) > before or cid is None or name is None or number is None or expires is None:
            return None
        return cid, ContractorSpec(name, number, expires, tuple(t for t in checked if t))

    def plan(self, at: Place, item: dict[str, Any]) -> PlanSpec | None:
        before = len(self.problems)
        self.unknown_keys(at, item, _PLAN_KEYS)
        site = self.matching(
            at / "site", item.get("site"), SITE_OR_DEVICE_ID, "required, a site id; got {value!r}"
        )
        name = self.text(at / "name", item.get("name"))
        ids = item.get("device_ids", [])
        if not isinstance(ids, list):
            self.add(at / "device_ids", "a list of device ids")
            ids = []
        for n, device_id in enumerate(ids):
            self.matching(
                (at / "device_ids")[n], device_id, SITE_OR_DEVICE_ID, "{value!r} is not a device id"
            )
        device_type = item.get("device_type")
        if device_type is not None:
            self.device_type(at / "device_type", device_type)
        building = self.text(at / "building", item.get("building"), required=False, limit=100)
        if not ids and device_type is None and building is None:
            self.add(at / "device_ids", "name the devices, a device_type or a building the plan covers")
        items = item.get("items")
        if not isinstance(items, list) or not items:
            self.add(at / "items", "required: a list of checklist items")
            items = []
        checklist = [self.text((at / "items")[n], text) for n, text in enumerate(items)]
        if len({c for c in checklist if c}) != len([c for c in checklist if c]):
            self.add(at / "items", "an item is listed twice")
        every = item.get("every")
        if every is not None:
            try:
                Period.parse(every)
            except PeriodError as exc:
                self.add(at / "every", str(exc))
        first_due = self.first_due(at / "first_due", item.get("first_due"))
        lead = item.get("lead_days", 0)
        if isinstance(lead, bool) or not isinstance(lead, int) or not 0 <= lead <= 366:
            self.add(at / "lead_days", f"{lead!r} is not a whole number of days from 0 to 366")
        counter = self.use(at / "counter", item.get("counter"), "counts")
        running = self.use(at / "running_hours", item.get("running_hours"), "hours")
        if every is None and counter is None and running is None and len(self.problems) == before:
            self.add(at / "every", "give when it falls due: every (a period), counter or running_hours")
        responsible = self.text(at / "responsible", item.get("responsible"), required=False, limit=100)
        contractor = item.get("contractor")
        if contractor is not None:
            self.matching(
                at / "contractor", contractor, SITE_OR_DEVICE_ID, "{value!r} is not a contractor id"
            )
        if len(self.problems) > before or site is None or name is None:
            return None
        return PlanSpec(
            site=site,
            name=name,
            items=tuple(c for c in checklist if c),
            device_ids=tuple(ids),
            device_type=device_type,
            building=building,
            every=every,
            first_due=first_due,
            lead_days=lead,
            counter=counter,
            running_hours=running,
            responsible=responsible,
            contractor=contractor,
        )

    def first_due(self, at: Place, value: Any) -> datetime | None:
        if value is None:
            return None
        if value == "today":
            return datetime.combine(self.today, time(), UTC)
        if isinstance(value, datetime):
            when = value if value.tzinfo else value.replace(tzinfo=UTC)
        elif isinstance(value, date):
            when = datetime.combine(value, time(), UTC)
        else:
            self.add(at, f"{value!r} is not a date, a time (2026-12-01T08:00:00Z) or today")
            return None
        if not 2000 <= when.year < 9000:
            self.add(at, f"{value!r}: dates run from the year 2000 to 8999")
            return None
        return when.astimezone(UTC)

    def use(self, at: Place, value: Any, unit: str) -> UseRule | None:
        if value is None:
            return None
        if not self.mapping(at, value, _USE_KEYS, _USE_KEYS):
            return None
        metric = self.matching(at / "metric", value["metric"], _METRIC, "{value!r} is not a metric name")
        every = value["every"]
        if isinstance(every, bool) or not isinstance(every, int | float) or not 0 < every <= 1e12:
            self.add(at / "every", f"{every!r} is not a number of {unit} > 0")
            return None
        return None if metric is None else UseRule(metric, float(every))


def read_plan_file(text: str, source: str, today: date) -> PlanFile:
    """The contractors and plans of a plans file; PlanFileError naming every problem."""
    doc = read_yaml(text, source, PlanFileError)
    checker = _PlanChecker(today)
    found = checker.document(doc)
    if found is None:
        raise PlanFileError(checker.problems, source)
    return found
