"""The numeric limits of the rules file, as Grafana threshold steps for the metrics they watch.

A rule such as `level_pct < 20` or `mean(co2_ppm, '1h') > 1000` gives a limit on a metric; the
steps colour each band of the metric by the highest class of rule that would fire there, so a
panel shows where a routine, major or emergency alarm starts. Read from the rules at generation
time, the dashboards follow the rules file.
"""

from __future__ import annotations

import ast
import itertools
import operator
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ground.severity import Severity
from rules.catalogue import Catalogue

_OPS: dict[type[ast.cmpop], tuple[str, Callable[[float, float], bool]]] = {
    ast.Lt: ("<", operator.lt),
    ast.LtE: ("<=", operator.le),
    ast.Gt: (">", operator.gt),
    ast.GtE: (">=", operator.ge),
}
_MIRROR = {ast.Lt: ast.Gt, ast.LtE: ast.GtE, ast.Gt: ast.Lt, ast.GtE: ast.LtE}
COLOURS = {Severity.ROUTINE: "yellow", Severity.MAJOR: "orange", Severity.EMERGENCY: "red"}
NORMAL = "green"


@dataclass(frozen=True)
class Limit:
    """One comparison of a rule: `metric op value` raises an alarm of `severity`."""

    rule: str
    metric: str
    op: str
    value: float
    severity: Severity
    test: Callable[[float, float], bool]
    clear: str | None = None  # the rule's clear condition, for the panel's description

    def holds(self, x: float) -> bool:
        """Whether the comparison holds for a metric value x."""
        return self.test(x, self.value)

    def describe(self) -> str:
        """`rule: metric op value (class)`, with its clear condition if any."""
        text = f"{self.rule}: {self.metric} {self.op} {self.value:g} ({self.severity.value})"
        return f"{text}, clears at {self.clear}" if self.clear else text


def _metric(node: ast.expr) -> str | None:
    """The metric a side of a comparison reads: a name, or the metric of `mean(metric, 'window')`."""
    if isinstance(node, ast.Name):
        return node.id
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "mean"
        and node.args
    ):
        first = node.args[0]
        return first.id if isinstance(first, ast.Name) else None
    return None


def _number(node: ast.expr) -> float | None:
    if (
        isinstance(node, ast.Constant)
        and isinstance(node.value, int | float)
        and not isinstance(node.value, bool)
    ):
        return float(node.value)
    return None


def comparisons(source: str) -> list[tuple[str, type[ast.cmpop], float]]:
    """Every `metric op number` (either way round) in a condition's source."""
    found = []
    for node in ast.walk(ast.parse(source, mode="eval")):
        if not isinstance(node, ast.Compare) or len(node.ops) != 1 or type(node.ops[0]) not in _OPS:
            continue
        op, left, right = type(node.ops[0]), node.left, node.comparators[0]
        metric, value = _metric(left), _number(right)
        if metric is None or value is None:
            metric, value, op = _metric(right), _number(left), _MIRROR[op]
        if metric is not None and value is not None:
            found.append((metric, op, value))
    return found


def limits(catalogue: Catalogue, device_type: str) -> list[Limit]:
    """The numeric limits of a device type's enabled rules, as the file defines them."""
    out = []
    for rule in catalogue.for_type(device_type):
        if rule.when is None or not rule.enabled:
            continue
        clear = rule.clear_when.source if rule.clear_when is not None else None
        for metric, op, value in comparisons(rule.when.source):
            text, test = _OPS[op]
            out.append(Limit(rule.id, metric, text, value, rule.severity, test, clear))
    return out


def steps(metric_limits: Iterable[Limit]) -> list[tuple[float | None, str]]:
    """Threshold steps (from value, colour) for one metric: each band coloured by its worst rule."""
    chosen = list(metric_limits)
    values = sorted({lim.value for lim in chosen})
    if not values:
        return []
    # A point inside each band decides its colour: below the first value, between values, above the last.
    probes = [values[0] - 1.0]
    probes += [(a + b) / 2 for a, b in itertools.pairwise(values)]
    probes.append(values[-1] + 1.0)
    starts: list[float | None] = [None, *values]
    out: list[tuple[float | None, str]] = []
    for start, probe in zip(starts, probes, strict=True):
        firing = [lim.severity for lim in chosen if lim.holds(probe)]
        colour = COLOURS[max(firing)] if firing else NORMAL
        if not out or out[-1][1] != colour:
            out.append((start, colour))
    return out
