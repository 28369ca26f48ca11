"""The rules file: read whole, checked against the device contract, every problem named by rule and field."""

from __future__ import annotations

from collections.abc import Hashable
from pathlib import Path
from typing import Any, NamedTuple

from ground.contract import DEVICE_TYPES, SITE_OR_DEVICE_ID
from ground.datafiles import RULE_ID, Checker, Place, ProblemsError, read_yaml
from ground.severity import Severity
from rules.conditions import Condition, ConditionError, compile_condition
from rules.rule import OFFLINE, OfflinePolicy, Override, Rule, reads

FORMAT_VERSION = 1

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
_A_CLASS = "a class"  # how the rules file words a refused class: "'x' is not a class (routine, …)"
_ROOT = Place()


class RulesError(ProblemsError):
    """A rules file that cannot be used; `problems` lists every fault found, each naming rule and field."""


class RulesFile(NamedTuple):
    """What a checked rules file holds, compiled and ready to index."""

    rules: list[Rule]
    maintenance: dict[str, Condition]
    offline: OfflinePolicy
    overrides: list[Override]


def _field_of(at: Place) -> str:
    """A place as the rules file's problems name it: `rule 'entrapment' (#2), field 'class'`."""
    field = f"field {at.field!r}"
    return f"{at.item}, {field}" if at.item else field


class _RulesChecker(Checker):
    """Builds the file's contents from the parsed document, collecting every problem on the way."""

    def __init__(self) -> None:
        super().__init__(_field_of)
        # Every rule id the file declares → (device type if valid, whether it has a condition).
        self.declared: dict[str, tuple[str | None, bool]] = {}

    def condition(self, at: Place, text: Any, device_type: str | None) -> Condition | None:
        if device_type is None:
            return None  # the device type is wrong, already reported
        if not isinstance(text, str):
            self.add(at, "a condition is a quoted expression")
            return None
        try:
            return compile_condition(text, device_type)
        except ConditionError as exc:
            self.add(at, str(exc))
            return None

    def document(self, doc: Any) -> RulesFile | None:
        if not isinstance(doc, dict):
            self.add(_ROOT / "(file)", "the rules file is a mapping with version, rules, ...")
            return None
        self.unknown_keys(_ROOT, doc, _TOP_KEYS)
        if doc.get("version") != FORMAT_VERSION:
            version = doc.get("version")
            self.add(_ROOT / "version", f"{version!r}: this program reads version {FORMAT_VERSION}")
        maintenance = self.maintenance(doc.get("maintenance", {}))
        offline = self.offline(doc.get("offline", {}))
        rules = self.rules(doc.get("rules"))
        overrides = self.overrides(doc.get("overrides", []))
        if self.problems or offline is None:
            return None
        return RulesFile(rules, maintenance, offline, overrides)

    def maintenance(self, doc: Any) -> dict[str, Condition]:
        if not isinstance(doc, dict):
            self.add(_ROOT / "maintenance", "a mapping of device type → condition")
            return {}
        at = (_ROOT / "maintenance").named("maintenance")
        out: dict[str, Condition] = {}
        for device_type, text in doc.items():
            checked = self.device_type(at / device_type, device_type)
            condition = self.condition(at / device_type, text, checked)
            if condition is not None and checked is not None:
                out[checked] = condition
        return out

    def offline(self, doc: Any) -> OfflinePolicy | None:
        if not isinstance(doc, dict):
            self.add(_ROOT / "offline", "a mapping with factor, class, class_by_type, intervals_s")
            return None
        at = (_ROOT / "offline").named("offline")
        self.unknown_keys(at, doc, _OFFLINE_KEYS)
        spec = {**_OFFLINE_DEFAULTS, **doc}
        factor = spec["factor"]
        if isinstance(factor, bool) or not isinstance(factor, int | float) or not 0 < factor <= 100:
            self.add(at / "factor", f"{factor!r} is not a number > 0 and ≤ 100")
            factor = 3
        severity = self.severity(at / "class", spec["class"], _A_CLASS) or Severity.ROUTINE
        by_type: dict[str, Severity] = {}
        if not isinstance(spec["class_by_type"], dict):
            self.add(at / "class_by_type", "a mapping of device type → class")
        else:
            for t, value in spec["class_by_type"].items():
                checked = self.device_type(at / "class_by_type" / t, t)
                s = self.severity(at / "class_by_type" / t, value, _A_CLASS)
                if checked is not None and s is not None:
                    by_type[checked] = s
        intervals: dict[str, int] = {}
        if not isinstance(spec["intervals_s"], dict):
            self.add(at / "intervals_s", "a mapping of device type → seconds")
        else:
            for t, value in spec["intervals_s"].items():
                checked = self.device_type(at / "intervals_s" / t, t)
                if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= 7 * 86400:
                    self.add(at / "intervals_s" / t, f"{value!r} is not a whole number of seconds > 0")
                elif checked is not None:
                    intervals[checked] = value
        held = self.flag(at / "held_in_maintenance", spec["held_in_maintenance"])
        title = spec["title"]
        if not isinstance(title, str) or not title.strip():
            self.add(at / "title", "a non-empty string")
            title = str(_OFFLINE_DEFAULTS["title"])
        return OfflinePolicy(float(factor), severity, by_type, intervals, held is not False, title)

    def rules(self, doc: Any) -> list[Rule]:
        if not isinstance(doc, list):
            self.add(_ROOT / "rules", "required: a list of rules")
            return []
        out: list[Rule] = []
        first: dict[str, int] = {}
        for n, item in enumerate(doc, 1):
            rule_id = item.get("id") if isinstance(item, dict) else None
            if isinstance(rule_id, str) and rule_id:
                name = f"rule {rule_id!r}" + (f" (#{n})" if rule_id in first else "")
            else:
                name = f"rule #{n}"
            at = (_ROOT / "rules")[n - 1].named(name)
            if not isinstance(item, dict):
                self.add(at / "(rule)", "a rule is a mapping with id, device_type, when or event, class")
                continue
            valid_id = self.matching(at / "id", rule_id, RULE_ID, "required, {pattern}; got {value!r}")
            if valid_id == OFFLINE:
                self.add(at / "id", "'offline' is the built-in rule: configure it in the offline section")
            elif valid_id in first:
                self.add(at / "id", f"duplicate id (rule #{first[valid_id]} has it too)")
            elif valid_id is not None:
                first[valid_id] = n
            rule = self.rule(at, item)
            if isinstance(rule_id, str) and rule_id not in self.declared:
                device_type = item.get("device_type")
                valid_type = (
                    device_type if isinstance(device_type, str) and device_type in DEVICE_TYPES else None
                )
                self.declared[rule_id] = (valid_type, "when" in item and "event" not in item)
            if rule is not None and rule.id in first and first[rule.id] == n:
                out.append(rule)
        return out

    def rule(self, at: Place, item: dict[Any, Any]) -> Rule | None:
        self.unknown_keys(at, item, _RULE_KEYS)
        ok = True
        device_type = self.device_type(at / "device_type", item.get("device_type"))
        when = clear_when = None
        event = None
        if ("when" in item) == ("event" in item):
            self.add(at / "when", "a rule has either when (a condition) or event (an event code)")
            ok = False
        elif "when" in item:
            when = self.condition(at / "when", item["when"], device_type)
            ok = ok and when is not None
            if "clear_when" in item:
                clear_when = self.condition(at / "clear_when", item["clear_when"], device_type)
                ok = ok and clear_when is not None
        else:
            event = item["event"]
            if device_type is not None and self.event_code(at / "event", event, device_type) is None:
                ok = False
            for key in ("clear_when", "clear_for"):
                if key in item:
                    self.add(at / key, "not for an event rule: its event's cleared state clears it")
                    ok = False
        for_ms = self.duration(at / "for", item.get("for", "0s"))
        if event is not None and for_ms:
            self.add(at / "for", "an event rule raises on the event itself: leave for out or 0s")
            ok = False
        clear_for_ms = self.duration(at / "clear_for", item.get("clear_for", "0s"))
        if "class" not in item:
            self.add(at / "class", "required: routine, major or emergency")
            severity = None
        else:
            severity = self.severity(at / "class", item["class"], _A_CLASS)
        held = self.flag(at / "held_in_maintenance", item.get("held_in_maintenance", True))
        enabled = self.flag(at / "enabled", item.get("enabled", True))
        rule_id = item.get("id")
        title = item.get("title", str(rule_id).replace("_", " ").capitalize())
        if not isinstance(title, str) or not title.strip():
            self.add(at / "title", "a non-empty string")
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
            reads(when, clear_when),
        )

    def overrides(self, doc: Any) -> list[Override]:
        if not isinstance(doc, list):
            self.add(_ROOT / "overrides", "a list of overrides")
            return []
        out: list[Override] = []
        seen: dict[tuple[Any, Any, Any], int] = {}
        for n, item in enumerate(doc, 1):
            if not isinstance(item, dict):
                at = (_ROOT / "overrides")[n - 1].named(f"override #{n}")
                self.add(at / "(override)", "a mapping with rule, site, device_id and changes")
                continue
            name = item.get("rule")
            at = (_ROOT / "overrides")[n - 1].named(f"override #{n} (rule {name!r})")
            self.unknown_keys(at, item, _OVERRIDE_KEYS)
            site, device_id = item.get("site"), item.get("device_id")
            ok = True
            for key, value in (("site", site), ("device_id", device_id)):
                refusal = "{value!r} is not a valid " + key.replace("_", " ")
                if value is not None and self.matching(at / key, value, SITE_OR_DEVICE_ID, refusal) is None:
                    ok = False
            if device_id is not None and site is None:
                self.add(at / "site", "required with device_id: device ids are unique only within a site")
                ok = False
            scope = (name, site, device_id)
            # A list or mapping where a name belongs is refused by the checks around this one.
            if all(isinstance(v, Hashable) for v in scope):
                if scope in seen:
                    self.add(at / "rule", f"override #{seen[scope]} already overrides this rule here")
                    ok = False
                seen.setdefault(scope, n)
            changes = self.changes(at, item, name)
            if changes is not None and ok:
                out.append(Override(str(name), site, device_id, changes))
        return out

    def changes(self, at: Place, item: dict[Any, Any], name: Any) -> dict[str, Any] | None:
        if not isinstance(name, str) or (name != OFFLINE and name not in self.declared):
            self.add(at / "rule", f"no rule {name!r} to override")
            return None
        asked = [k for k in _CHANGE_KEYS if k in item]
        if not asked:
            self.add(at / "rule", f"an override changes at least one of {', '.join(_CHANGE_KEYS)}")
            return None
        device_type, threshold = self.declared.get(name, (None, False))
        changes: dict[str, Any] = {}
        ok = True
        for key in asked:
            value = item[key]
            if key in ("when", "clear_when", "for", "clear_for") and not threshold:
                kind = "the offline rule" if name == OFFLINE else "an event rule"
                self.add(at / key, f"not for {kind}: only class and enabled can be overridden")
                ok = False
                continue
            result: Any
            if key in ("when", "clear_when"):
                result = self.condition(at / key, value, device_type)
            elif key in ("for", "clear_for"):
                result = self.duration(at / key, value)
            elif key == "class":
                result = self.severity(at / key, value, _A_CLASS)
            else:
                result = self.flag(at / key, value)
            if result is None:
                ok = False
            changes[_FIELD.get(key, key)] = result
        return changes if ok else None


def rules_text(source: str | Path) -> tuple[str, str]:
    """(text, name) of `source`: a Path, or a str that is a path when it is one line ending in .yaml/.yml."""
    if isinstance(source, Path) or ("\n" not in source and source.strip().endswith((".yaml", ".yml"))):
        path = Path(source)
        return path.read_text(encoding="utf-8"), str(path)
    return source, "rules"


def read_rules(text: str, name: str) -> RulesFile:
    """Check and compile the rules file in `text`; raises RulesError listing every problem, naming `name`."""
    doc = read_yaml(text, name, RulesError)
    checker = _RulesChecker()
    contents = checker.document(doc)
    if contents is None:
        raise RulesError(checker.problems or ["the rules file is empty"], name)
    return contents


def check_file(path: str | Path) -> list[str]:
    """The problems of a rules file, each naming rule and field; empty when it is fine."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return [f"cannot read {path}: {exc}"]
    try:
        read_rules(text, str(path))
    except RulesError as exc:
        return exc.problems
    return []
