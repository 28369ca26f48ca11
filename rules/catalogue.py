"""The rules file: loaded whole, checked against the device contract, compiled once.

A bad file raises `RulesError` listing every problem, each naming the rule and the field. The
`Catalogue` indexes the rules by device type and resolves site and device overrides lazily, once
per device.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import yaml

from ground.contract import DEVICE_TYPES
from ground.datafiles import ProblemsError, UniqueKeyLoader
from ground.severity import Severity
from rules.conditions import Condition, ConditionError, Test, Window, compile_condition, parse_duration

OFFLINE = "offline"  # the id of the built-in deadman rule
FORMAT_VERSION = 1

_RULE_ID = re.compile(r"[a-z][a-z0-9_]*")
_SITE_OR_DEVICE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_TOP_KEYS = ("version", "maintenance", "offline", "rules", "overrides")
_RULE_KEYS = (
    "id",
    "device_type",
    "title",
    "when",
    "clear_when",
    "event",
    "for",
    "clear_for",
    "class",
    "held_in_maintenance",
    "enabled",
)
_CHANGE_KEYS = ("when", "clear_when", "for", "clear_for", "class", "enabled")
_FIELD = {"for": "for_ms", "clear_for": "clear_for_ms", "class": "severity"}  # file key → Rule field
_OVERRIDE_KEYS = ("rule", "site", "device_id", *_CHANGE_KEYS)
_OFFLINE_KEYS = ("factor", "class", "class_by_type", "intervals_s", "held_in_maintenance", "title")
# The contract's offline rule: 3 times the reporting interval; routine, major for fire panels and lifts.
_OFFLINE_DEFAULTS: dict[str, Any] = {
    "factor": 3,
    "class": "routine",
    "class_by_type": {"fire_panel": "major", "elevator": "major"},
    "intervals_s": {},
    "held_in_maintenance": True,
    "title": "No message from the device",
}


class RulesError(ProblemsError):
    """A rules file that cannot be used; `problems` lists every fault found, each naming rule and field."""


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule, resolved for a device: a condition on telemetry, a device event, or the offline deadman."""

    id: str
    device_type: str
    title: str
    severity: Severity
    when: Condition | None = None
    clear_when: Condition | None = None
    event: str | None = None
    for_ms: int = 0
    clear_for_ms: int = 0
    held_in_maintenance: bool = True
    enabled: bool = True
    reads: tuple[str, ...] = ()  # value keys shown in an alarm's detail

    @property
    def kind(self) -> Literal["threshold", "event", "offline"]:
        """What raises the rule: a condition on telemetry, a device event, or silence."""
        if self.when is not None:
            return "threshold"
        return "event" if self.event is not None else "offline"


@dataclass(frozen=True, slots=True)
class Override:
    """Changes to one rule for every device, a site, or one device of a site."""

    rule: str
    site: str | None
    device_id: str | None
    changes: dict[str, Any]  # Rule field → value, already compiled


@dataclass(frozen=True, slots=True)
class OfflinePolicy:
    """The built-in offline rule: silence for `factor` times the reporting interval, or a status `offline`."""

    factor: float
    severity: Severity
    by_type: dict[str, Severity]
    intervals_s: dict[str, int]
    held_in_maintenance: bool
    title: str

    def interval_s(self, device_type: str) -> int:
        """The reporting interval assumed for the type: the file's override, else the contract's."""
        if device_type in self.intervals_s:
            return self.intervals_s[device_type]
        dtype = DEVICE_TYPES.get(device_type)
        return dtype.report_interval_s if dtype else 60

    def rule(self, device_type: str) -> Rule:
        """The offline rule for a device type, before overrides."""
        return Rule(
            OFFLINE,
            device_type,
            self.title,
            self.by_type.get(device_type, self.severity),
            held_in_maintenance=self.held_in_maintenance,
        )


@dataclass(frozen=True, slots=True)
class DeviceRules:
    """The enabled rules of one device with its overrides applied, ready for the engine."""

    device_type: str
    thresholds: tuple[Rule, ...]
    events: dict[str, tuple[Rule, ...]]  # event code → rules
    offline: Rule | None
    maintenance: Condition | None
    windows: tuple[Window, ...]  # rolling means its conditions read
    interval_s: int
    by_id: dict[str, Rule] = field(default_factory=dict)  # enabled rules, offline included
    # (rule, when.test, clear_when.test) of the thresholds, unpacked once for the engine's loop.
    checks: tuple[tuple[Rule, Test, Test | None], ...] = ()


def _reads(*conditions: Condition | None) -> tuple[str, ...]:
    keys: dict[str, None] = {}
    for c in conditions:
        if c is not None:
            keys.update(dict.fromkeys(c.reads))
    return tuple(keys)


def _device_rules(
    device_type: str,
    rules: Iterable[Rule],
    maintenance: Condition | None,
    offline: Rule,
    interval_s: int,
) -> DeviceRules:
    enabled = [r for r in rules if r.enabled]
    events: dict[str, list[Rule]] = {}
    for r in enabled:
        if r.event is not None:
            events.setdefault(r.event, []).append(r)
    windows: dict[str, Window] = {}
    for c in [maintenance, *(r.when for r in enabled), *(r.clear_when for r in enabled)]:
        if c is not None:
            windows.update((w.key, w) for w in c.windows)
    on_offline = offline if offline.enabled else None
    by_id = {r.id: r for r in enabled}
    if on_offline is not None:
        by_id[OFFLINE] = on_offline
    checks = tuple(
        (r, r.when.test, r.clear_when.test if r.clear_when is not None else None)
        for r in enabled
        if r.when is not None
    )
    return DeviceRules(
        device_type,
        tuple(r for r, _, _ in checks),
        {code: tuple(rs) for code, rs in events.items()},
        on_offline,
        maintenance,
        tuple(windows.values()),
        interval_s,
        by_id,
        checks,
    )


def _apply(rule: Rule, changes: dict[str, Any]) -> Rule:
    changed = replace(rule, **changes)
    return replace(changed, reads=_reads(changed.when, changed.clear_when))


class Catalogue:
    """The compiled rules: indexed by device type, overrides resolved per device on first use."""

    def __init__(
        self,
        rules: Iterable[Rule],
        maintenance: dict[str, Condition],
        offline: OfflinePolicy,
        overrides: Iterable[Override] = (),
    ) -> None:
        self.rules = tuple(rules)
        self.maintenance = dict(maintenance)
        self.offline = offline
        self.overrides = tuple(overrides)
        self._by_id = {r.id: r for r in self.rules}
        self._type_of = {r.id: r.device_type for r in self.rules}
        global_changes: dict[str, dict[str, Any]] = {}
        self._site: dict[str, list[Override]] = {}
        self._device: dict[tuple[str, str], list[Override]] = {}
        for o in self.overrides:
            if o.site is None:
                global_changes.setdefault(o.rule, {}).update(o.changes)
            elif o.device_id is None:
                self._site.setdefault(o.site, []).append(o)
            else:
                self._device.setdefault((o.site, o.device_id), []).append(o)
        # Defaults with the fleet-wide overrides applied: what a device without overrides gets.
        self._base: dict[str, list[Rule]] = {t: [] for t in DEVICE_TYPES}
        for r in self.rules:
            changes = global_changes.get(r.id)
            self._base.setdefault(r.device_type, []).append(_apply(r, changes) if changes else r)
        self._base_offline = {t: self.offline.rule(t) for t in self._base}
        for t, off in self._base_offline.items():
            changes = global_changes.get(OFFLINE)
            if changes:
                self._base_offline[t] = replace(off, **changes)
        self._typed = {t: self._resolve(t, self._base[t], self._base_offline[t]) for t in self._base}
        self._cache: dict[tuple[str, str, str], DeviceRules] = {}

    def rule(self, rule_id: str) -> Rule:
        """A rule as the file defines it, before overrides; KeyError if there is none."""
        return self._by_id[rule_id]

    def for_type(self, device_type: str) -> tuple[Rule, ...]:
        """The rules of a device type as the file defines them, before overrides."""
        return tuple(r for r in self.rules if r.device_type == device_type)

    def for_device(self, site: str, device_type: str, device_id: str) -> DeviceRules:
        """The enabled rules of one device, its site's and its own overrides applied (cached)."""
        key = (site, device_type, device_id)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        own = [
            o
            for o in (*self._site.get(site, ()), *self._device.get((site, device_id), ()))
            if self._type_of.get(o.rule, device_type) == device_type
        ]
        if not own:
            resolved = self._typed.get(device_type)
            if resolved is None:
                resolved = self._resolve(device_type, [], self.offline.rule(device_type))
        else:
            # Device-level overrides come after the site's, so they win field by field.
            own.sort(key=lambda o: o.device_id is not None)
            changes: dict[str, dict[str, Any]] = {}
            for o in own:
                changes.setdefault(o.rule, {}).update(o.changes)
            rules = [_apply(r, changes[r.id]) if r.id in changes else r for r in self._base[device_type]]
            offline = self._base_offline[device_type]
            if OFFLINE in changes:
                offline = replace(offline, **changes[OFFLINE])
            resolved = self._resolve(device_type, rules, offline)
        self._cache[key] = resolved
        return resolved

    def _resolve(self, device_type: str, rules: Iterable[Rule], offline: Rule) -> DeviceRules:
        return _device_rules(
            device_type,
            rules,
            self.maintenance.get(device_type),
            offline,
            self.offline.interval_s(device_type),
        )


# Loading and checking.


class _Checker:
    """Builds a Catalogue from the parsed document, collecting every problem on the way."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        # Every rule id the file declares → (device type if valid, whether it has a condition).
        self.declared: dict[str, tuple[str | None, bool]] = {}

    def add(self, where: str, field_name: str, message: str) -> None:
        prefix = f"{where}, " if where else ""
        self.problems.append(f"{prefix}field {field_name!r}: {message}")

    def unknown_keys(self, where: str, doc: dict[Any, Any], allowed: Iterable[str]) -> None:
        allowed = tuple(allowed)
        for key in doc:
            if key not in allowed:
                self.add(where, str(key), f"unknown key (allowed: {', '.join(allowed)})")

    def duration(self, where: str, field_name: str, value: Any) -> int | None:
        try:
            return parse_duration(value)
        except ConditionError as exc:
            self.add(where, field_name, str(exc))
            return None

    def condition(self, where: str, field_name: str, text: Any, device_type: str | None) -> Condition | None:
        if device_type is None:
            return None  # the device type is wrong, already reported
        if not isinstance(text, str):
            self.add(where, field_name, "a condition is a quoted expression")
            return None
        try:
            return compile_condition(text, device_type)
        except ConditionError as exc:
            self.add(where, field_name, str(exc))
            return None

    def severity(self, where: str, field_name: str, value: Any) -> Severity | None:
        try:
            return Severity(value)
        except ValueError:
            self.add(where, field_name, f"{value!r} is not a class (routine, major or emergency)")
            return None

    def flag(self, where: str, field_name: str, value: Any) -> bool | None:
        if not isinstance(value, bool):
            self.add(where, field_name, f"{value!r} is not true or false")
            return None
        return value

    def device_type(self, where: str, field_name: str, value: Any) -> str | None:
        if not isinstance(value, str) or value not in DEVICE_TYPES:
            self.add(where, field_name, f"unknown device type {value!r}")
            return None
        return value

    def document(self, doc: Any) -> Catalogue | None:
        if not isinstance(doc, dict):
            self.add("", "(file)", "the rules file is a mapping with version, rules, ...")
            return None
        self.unknown_keys("", doc, _TOP_KEYS)
        if doc.get("version") != FORMAT_VERSION:
            self.add("", "version", f"{doc.get('version')!r}: this program reads version {FORMAT_VERSION}")
        maintenance = self.maintenance(doc.get("maintenance", {}))
        offline = self.offline(doc.get("offline", {}))
        rules = self.rules(doc.get("rules"))
        overrides = self.overrides(doc.get("overrides", []))
        if self.problems or offline is None:
            return None
        return Catalogue(rules, maintenance, offline, overrides)

    def maintenance(self, doc: Any) -> dict[str, Condition]:
        if not isinstance(doc, dict):
            self.add("", "maintenance", "a mapping of device type → condition")
            return {}
        out: dict[str, Condition] = {}
        for device_type, text in doc.items():
            checked = self.device_type("maintenance", str(device_type), device_type)
            condition = self.condition("maintenance", str(device_type), text, checked)
            if condition is not None and checked is not None:
                out[checked] = condition
        return out

    def offline(self, doc: Any) -> OfflinePolicy | None:
        where = "offline"
        if not isinstance(doc, dict):
            self.add("", where, "a mapping with factor, class, class_by_type, intervals_s")
            return None
        self.unknown_keys(where, doc, _OFFLINE_KEYS)
        spec = {**_OFFLINE_DEFAULTS, **doc}
        factor = spec["factor"]
        if isinstance(factor, bool) or not isinstance(factor, int | float) or not 0 < factor <= 100:
            self.add(where, "factor", f"{factor!r} is not a number > 0 and ≤ 100")
            factor = 3
        severity = self.severity(where, "class", spec["class"]) or Severity.ROUTINE
        by_type: dict[str, Severity] = {}
        if not isinstance(spec["class_by_type"], dict):
            self.add(where, "class_by_type", "a mapping of device type → class")
        else:
            for t, value in spec["class_by_type"].items():
                checked = self.device_type(where, f"class_by_type.{t}", t)
                s = self.severity(where, f"class_by_type.{t}", value)
                if checked is not None and s is not None:
                    by_type[checked] = s
        intervals: dict[str, int] = {}
        if not isinstance(spec["intervals_s"], dict):
            self.add(where, "intervals_s", "a mapping of device type → seconds")
        else:
            for t, value in spec["intervals_s"].items():
                checked = self.device_type(where, f"intervals_s.{t}", t)
                if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= 7 * 86400:
                    self.add(where, f"intervals_s.{t}", f"{value!r} is not a whole number of seconds > 0")
                elif checked is not None:
                    intervals[checked] = value
        held = self.flag(where, "held_in_maintenance", spec["held_in_maintenance"])
        title = spec["title"]
        if not isinstance(title, str) or not title.strip():
            self.add(where, "title", "a non-empty string")
            title = str(_OFFLINE_DEFAULTS["title"])
        return OfflinePolicy(float(factor), severity, by_type, intervals, held is not False, title)

    def rules(self, doc: Any) -> list[Rule]:
        if not isinstance(doc, list):
            self.add("", "rules", "required: a list of rules")
            return []
        out: list[Rule] = []
        first: dict[str, int] = {}
        for n, item in enumerate(doc, 1):
            rule_id = item.get("id") if isinstance(item, dict) else None
            if isinstance(rule_id, str) and rule_id:
                where = f"rule {rule_id!r}" + (f" (#{n})" if rule_id in first else "")
            else:
                where = f"rule #{n}"
            if not isinstance(item, dict):
                self.add(where, "(rule)", "a rule is a mapping with id, device_type, when or event, class")
                continue
            if not isinstance(rule_id, str) or not _RULE_ID.fullmatch(rule_id):
                self.add(where, "id", f"required, [a-z][a-z0-9_]*; got {rule_id!r}")
            elif rule_id == OFFLINE:
                self.add(where, "id", "'offline' is the built-in rule: configure it in the offline section")
            elif rule_id in first:
                self.add(where, "id", f"duplicate id (rule #{first[rule_id]} has it too)")
            else:
                first[rule_id] = n
            rule = self.rule(where, item)
            if isinstance(rule_id, str) and rule_id not in self.declared:
                device_type = item.get("device_type")
                valid_type = device_type if device_type in DEVICE_TYPES else None
                self.declared[rule_id] = (valid_type, "when" in item and "event" not in item)
            if rule is not None and rule.id in first and first[rule.id] == n:
                out.append(rule)
        return out

    def rule(self, where: str, item: dict[Any, Any]) -> Rule | None:
        self.unknown_keys(where, item, _RULE_KEYS)
        ok = True
        device_type = self.device_type(where, "device_type", item.get("device_type"))
        when = clear_when = None
        event = None
        if ("when" in item) == ("event" in item):
            self.add(where, "when", "a rule has either when (a condition) or event (an event code)")
            ok = False
        elif "when" in item:
            when = self.condition(where, "when", item["when"], device_type)
            ok = ok and when is not None
            if "clear_when" in item:
                clear_when = self.condition(where, "clear_when", item["clear_when"], device_type)
                ok = ok and clear_when is not None
        else:
            event = item["event"]
            if device_type is not None and event not in DEVICE_TYPES[device_type].events:
                known = ", ".join(sorted(DEVICE_TYPES[device_type].events)) or "none"
                self.add(where, "event", f"unknown event code {event!r} for {device_type} (known: {known})")
                ok = False
            for key in ("clear_when", "clear_for"):
                if key in item:
                    self.add(where, key, "not for an event rule: its event's cleared state clears it")
                    ok = False
        for_ms = self.duration(where, "for", item.get("for", "0s"))
        if event is not None and for_ms:
            self.add(where, "for", "an event rule raises on the event itself: leave for out or 0s")
            ok = False
        clear_for_ms = self.duration(where, "clear_for", item.get("clear_for", "0s"))
        if "class" not in item:
            self.add(where, "class", "required: routine, major or emergency")
            severity = None
        else:
            severity = self.severity(where, "class", item["class"])
        held = self.flag(where, "held_in_maintenance", item.get("held_in_maintenance", True))
        enabled = self.flag(where, "enabled", item.get("enabled", True))
        rule_id = item.get("id")
        title = item.get("title", str(rule_id).replace("_", " ").capitalize())
        if not isinstance(title, str) or not title.strip():
            self.add(where, "title", "a non-empty string")
            ok = False
        if (
            not ok
            or device_type is None
            or severity is None
            or for_ms is None
            or clear_for_ms is None
            or held is None
            or enabled is None
            or not isinstance(rule_id, str)
        ):
            return None
        return Rule(
            rule_id,
            device_type,
            title,
            severity,
            when,
            clear_when,
            event,
            for_ms,
            clear_for_ms,
            held,
            enabled,
            _reads(when, clear_when),
        )

    def overrides(self, doc: Any) -> list[Override]:
        if not isinstance(doc, list):
            self.add("", "overrides", "a list of overrides")
            return []
        out: list[Override] = []
        seen: dict[tuple[Any, Any, Any], int] = {}
        for n, item in enumerate(doc, 1):
            if not isinstance(item, dict):
                self.add(f"override #{n}", "(override)", "a mapping with rule, site, device_id and changes")
                continue
            name = item.get("rule")
            where = f"override #{n} (rule {name!r})"
            self.unknown_keys(where, item, _OVERRIDE_KEYS)
            site, device_id = item.get("site"), item.get("device_id")
            ok = True
            for key, value in (("site", site), ("device_id", device_id)):
                if value is not None and (not isinstance(value, str) or not _SITE_OR_DEVICE.fullmatch(value)):
                    self.add(where, key, f"{value!r} is not a valid {key.replace('_', ' ')}")
                    ok = False
            if device_id is not None and site is None:
                self.add(where, "site", "required with device_id: device ids are unique only within a site")
                ok = False
            scope = (name, site, device_id)
            if scope in seen:
                self.add(where, "rule", f"override #{seen[scope]} already overrides this rule here")
                ok = False
            seen.setdefault(scope, n)
            changes = self.changes(where, item, name)
            if changes is not None and ok:
                out.append(Override(str(name), site, device_id, changes))
        return out

    def changes(self, where: str, item: dict[Any, Any], name: Any) -> dict[str, Any] | None:
        if name != OFFLINE and name not in self.declared:
            self.add(where, "rule", f"no rule {name!r} to override")
            return None
        asked = [k for k in _CHANGE_KEYS if k in item]
        if not asked:
            self.add(where, "rule", f"an override changes at least one of {', '.join(_CHANGE_KEYS)}")
            return None
        device_type, threshold = self.declared.get(name, (None, False))
        changes: dict[str, Any] = {}
        ok = True
        for key in asked:
            value = item[key]
            if key in ("when", "clear_when", "for", "clear_for") and not threshold:
                kind = "the offline rule" if name == OFFLINE else "an event rule"
                self.add(where, key, f"not for {kind}: only class and enabled can be overridden")
                ok = False
                continue
            result: Any
            if key in ("when", "clear_when"):
                result = self.condition(where, key, value, device_type)
            elif key in ("for", "clear_for"):
                result = self.duration(where, key, value)
            elif key == "class":
                result = self.severity(where, key, value)
            else:
                result = self.flag(where, key, value)
            if result is None:
                ok = False
            changes[_FIELD.get(key, key)] = result
        return changes if ok else None


def _read_text(source: str | Path) -> tuple[str, str]:
    """(text, name) of `source`: a Path, or a str that is a path when it is one line ending in .yaml/.yml."""
    if isinstance(source, Path) or ("\n" not in source and source.strip().endswith((".yaml", ".yml"))):
        path = Path(source)
        return path.read_text(encoding="utf-8"), str(path)
    return source, "rules"


def _parse(text: str, name: str) -> Catalogue:
    try:
        doc = yaml.load(text, Loader=UniqueKeyLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise RulesError([f"not valid YAML: {exc}"], name) from None
    checker = _Checker()
    catalogue = checker.document(doc)
    if catalogue is None:
        raise RulesError(checker.problems or ["the rules file is empty"], name)
    return catalogue


def load_rules(source: str | Path) -> Catalogue:
    """Load, check and compile a rules file (a Path, a path ending in .yaml, or the YAML text).

    Raises RulesError listing every problem in the file.
    """
    text, name = _read_text(source)
    return _parse(text, name)


def check_file(path: str | Path) -> list[str]:
    """The problems of a rules file, each naming rule and field; empty when it is fine."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return [f"cannot read {path}: {exc}"]
    try:
        _parse(text, str(path))
    except RulesError as exc:
        return exc.problems
    return []


def default_rules_path() -> Path:
    """The rules file shipped with the package: the contract's default rule table."""
    return Path(__file__).with_name("default_rules.yaml")


def default_catalogue() -> Catalogue:
    """The shipped default rules, loaded and compiled."""
    return load_rules(default_rules_path())
