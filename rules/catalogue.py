"""The compiled rules: indexed by device type, site and device overrides resolved lazily, once per device.

The rules file is read and checked by `rules.rulesfile`; a bad file raises `RulesError` listing every
problem, each naming the rule and the field. This module keeps the names both are known by.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ground.contract import DEVICE_TYPES
from rules.conditions import Condition, Test, Window
from rules.rule import OFFLINE, OfflinePolicy, Override, Rule, changed
from rules.rulesfile import FORMAT_VERSION, RulesError, check_file, read_rules, rules_text

__all__ = [
    "FORMAT_VERSION",
    "OFFLINE",
    "Catalogue",
    "DeviceRules",
    "OfflinePolicy",
    "Override",
    "Rule",
    "RulesError",
    "check_file",
    "default_catalogue",
    "default_rules_path",
    "load_rules",
]


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
            self._base.setdefault(r.device_type, []).append(changed(r, changes) if changes else r)
        self._base_offline = {t: self.offline.rule(t) for t in self._base}
        for t, off in self._base_offline.items():
            changes = global_changes.get(OFFLINE)
            if changes:
                self._base_offline[t] = replace(off, **changes)
        self._typed = {t: self._resolve(t, self._base[t], self._base_offline[t]) for t in self._base}
        self._cache: dict[tuple[str, str, str | None], DeviceRules] = {}

    def rule(self, rule_id: str) -> Rule:
        """A rule as the file defines it, before overrides; KeyError if there is none."""
        return self._by_id[rule_id]

    def for_type(self, device_type: str) -> tuple[Rule, ...]:
        """The rules of a device type as the file defines them, before overrides."""
        return tuple(r for r in self.rules if r.device_type == device_type)

    def for_device(self, site: str, device_type: str, device_id: str) -> DeviceRules:
        """The enabled rules of one device, its site's and its own overrides applied (cached)."""
        device_own = self._device.get((site, device_id), ())
        # Devices with no overrides of their own share their site's (or their type's) rules.
        key = (site, device_type, device_id if device_own else None)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        own = [
            o
            for o in (*self._site.get(site, ()), *device_own)
            if self._type_of.get(o.rule, device_type) == device_type
        ]
        if not own:
            # Most devices: their type's rules, shared, and no entry of their own in the cache.
            resolved = self._typed.get(device_type)
            if resolved is None:
                resolved = self._typed[device_type] = self._resolve(
                    device_type, [], self.offline.rule(device_type)
                )
            return resolved
        # Device-level overrides come after the site's, so they win field by field.
        own.sort(key=lambda o: o.device_id is not None)
        changes: dict[str, dict[str, Any]] = {}
        for o in own:
            changes.setdefault(o.rule, {}).update(o.changes)
        rules = [changed(r, changes[r.id]) if r.id in changes else r for r in self._base[device_type]]
        offline = self._base_offline[device_type]
        if OFFLINE in changes:
            offline = replace(offline, **changes[OFFLINE])
        resolved = self._cache[key] = self._resolve(device_type, rules, offline)
        return resolved

    def _resolve(self, device_type: str, rules: Iterable[Rule], offline: Rule) -> DeviceRules:
        return _device_rules(
            device_type,
            rules,
            self.maintenance.get(device_type),
            offline,
            self.offline.interval_s(device_type),
        )


def load_rules(source: str | Path) -> Catalogue:
    """Load, check and compile a rules file (a Path, a path ending in .yaml, or the YAML text).

    Raises RulesError listing every problem in the file.
    """
    return Catalogue(*read_rules(*rules_text(source)))


def default_rules_path() -> Path:
    """The rules file shipped with the package: the contract's default rule table."""
    return Path(__file__).with_name("default_rules.yaml")


def default_catalogue() -> Catalogue:
    """The shipped default rules, loaded and compiled."""
    return load_rules(default_rules_path())
