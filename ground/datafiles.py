"""Data files people write (rules, scenarios): strict YAML, durations, checks naming every problem at once."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import yaml

from ground.contract import DEVICE_TYPES
from ground.severity import Severity

MAX_DURATION_MS = 7 * 24 * 3600 * 1000
# A rule id (site and device ids: the contract's SITE_OR_DEVICE_ID).
RULE_ID = re.compile(r"[a-z][a-z0-9_]*")

_UNITS_MS = {"ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}
_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|min|h|d)\s*")


class ProblemsError(ValueError):
    """A file that cannot be used; `problems` lists every fault found, each naming its place."""

    def __init__(self, problems: list[str], source: str) -> None:
        self.problems = problems
        self.source = source
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        super().__init__(f"{source}: {count}:\n" + "\n".join(f"  - {p}" for p in problems))


class UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (YAML would keep the last one)."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} given twice", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_yaml(text: str, source: str, error: type[ProblemsError] = ProblemsError) -> Any:
    """The document in `text`, a key given twice refused; YAML that does not parse raises `error`."""
    try:
        return yaml.load(text, Loader=UniqueKeyLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise error([f"not valid YAML: {exc}"], source) from None


class DurationError(ValueError):
    """A duration that cannot be read; the message says what is wrong with it."""


def parse_duration(text: object) -> int:
    """Milliseconds from `0s`, `15s`, `10min`, `2h`, `1d` or `500ms`; 0 to 7 days."""
    if not isinstance(text, str):
        raise DurationError(f"{text!r} is not a duration: write it with a unit, like '15s' or '10min'")
    match = _DURATION.fullmatch(text)
    if match is None:
        raise DurationError(f"{text!r} is not a duration: a number and one of ms, s, min, h, d")
    ms = float(match[1]) * _UNITS_MS[match[2]]
    if ms != int(ms):
        raise DurationError(f"{text!r} is not a whole number of milliseconds")
    if ms > MAX_DURATION_MS:
        raise DurationError(f"{text!r} is longer than 7 days")
    return int(ms)


def format_duration(ms: int) -> str:
    """The shortest of `1h`, `10min`, `15s`, `500ms` that says `ms` exactly."""
    for unit in ("d", "h", "min", "s"):
        size = _UNITS_MS[unit]
        if ms and ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms" if ms else "0s"


def alternatives(choices: Sequence[str]) -> str:
    """`a, b or c`: the choices as a sentence names them."""
    if len(choices) < 2:
        return "".join(choices)
    return f"{', '.join(choices[:-1])} or {choices[-1]}"


def _dotted(path: Sequence[str | int]) -> str:
    out = ""
    for segment in path:
        if isinstance(segment, int):
            out += f"[{segment}]"
        else:
            out += f".{segment}" if out else segment
    return out


@dataclass(frozen=True, slots=True)
class Place:
    """Where a value sits in a document (`steps[2].at`), and the name of the item that holds it.

    `place / "key"` is a key below it, `place[3]` an item of the list at it.
    """

    path: tuple[str | int, ...] = ()
    item: str = ""  # the holding item as problems name it, e.g. "rule 'entrapment' (#2)"; "" for none
    item_depth: int = 0  # path[:item_depth] leads to that item

    def __truediv__(self, key: object) -> Place:
        return replace(self, path=(*self.path, str(key)))

    def __getitem__(self, index: int) -> Place:
        return replace(self, path=(*self.path, index))

    def __str__(self) -> str:
        return _dotted(self.path)

    def named(self, item: str) -> Place:
        """This place as an item of its own, which problems name `item`, with its fields below it."""
        return replace(self, item=item, item_depth=len(self.path))

    @property
    def field(self) -> str:
        """The path below the named item: `class_by_type.fire_panel` of the item `offline`."""
        return _dotted(self.path[self.item_depth :])


class Checker:
    """Walks a parsed document, collecting every problem with the place of its value; the checks files share.

    `name` words a place for a problem (default: its dotted path); each problem reads `name: what`.
    """

    def __init__(self, name: Callable[[Place], str] = str) -> None:
        self.problems: list[str] = []
        self._name = name

    def add(self, at: Place, text: str) -> None:
        """Note a problem of the value at `at`."""
        self.problems.append(f"{self._name(at)}: {text}")

    def unknown_keys(self, at: Place, doc: Mapping[Any, Any], allowed: Sequence[str]) -> None:
        """Refuse every key of `doc` not among `allowed`: a misspelt key would be silently ignored."""
        for key in doc:
            if key not in allowed:
                self.add(at / key, f"unknown key (allowed: {', '.join(allowed)})")

    def mapping(self, at: Place, value: Any, allowed: Sequence[str], required: Sequence[str] = ()) -> bool:
        """True when `value` is a mapping with keys among `allowed`, holding every `required` one."""
        if not isinstance(value, dict):
            self.add(at, "must be a mapping")
            return False
        self.unknown_keys(at, value, allowed)
        for key in required:
            if key not in value:
                self.add(at / key, "required")
        return all(k in value for k in required)

    def duration(self, at: Place, value: Any, positive: bool = False) -> int | None:
        """Milliseconds of a duration such as `15s`; with `positive`, 0s is refused too."""
        try:
            ms = parse_duration(value)
        except DurationError as exc:
            self.add(at, str(exc))
            return None
        if positive and ms == 0:
            self.add(at, "must be longer than 0s")
            return None
        return ms

    def flag(self, at: Place, value: Any) -> bool | None:
        """A YAML true or false."""
        if not isinstance(value, bool):
            self.add(at, f"{value!r} is not true or false")
            return None
        return value

    def choice(
        self, at: Place, value: Any, choices: Sequence[str], what: str = "", hint: str = ""
    ) -> str | None:
        """One of `choices`; refused as "'x' is not a, b or c", or "'x' is not <what> (a, b or c)"."""
        if isinstance(value, str) and value in choices:
            return value
        named = f"{what} ({alternatives(choices)})" if what else alternatives(choices)
        self.add(at, f"{value!r} is not {named}{hint}")
        return None

    def severity(self, at: Place, value: Any, what: str = "") -> Severity | None:
        """A class of ground.severity: routine, major or emergency."""
        chosen = self.choice(at, value, [s.value for s in Severity], what)
        return None if chosen is None else Severity(chosen)

    def matching(
        self,
        at: Place,
        value: Any,
        pattern: re.Pattern[str],
        text: str = "{value!r} does not match {pattern}",
    ) -> str | None:
        """A string `pattern` matches whole, such as an id; `text` words a refusal ({value}, {pattern})."""
        if isinstance(value, str) and pattern.fullmatch(value):
            return value
        self.add(at, text.format(value=value, pattern=pattern.pattern))
        return None

    def device_type(self, at: Place, value: Any, text: str = "unknown device type {value!r}") -> str | None:
        """A device type of the contract; `text` words a refusal ({value}, {known}: the types)."""
        if isinstance(value, str) and value in DEVICE_TYPES:
            return value
        self.add(at, text.format(value=value, known=", ".join(sorted(DEVICE_TYPES))))
        return None

    def event_code(
        self,
        at: Place,
        value: Any,
        device_type: str,
        text: str = "unknown event code {value!r} for {device_type} (known: {known})",
    ) -> str | None:
        """An event code of the device type; `text` words a refusal ({value}, {device_type}, {known})."""
        events = DEVICE_TYPES[device_type].events
        if isinstance(value, str) and value in events:
            return value
        known = ", ".join(sorted(events)) or "none"
        self.add(at, text.format(value=value, device_type=device_type, known=known))
        return None
