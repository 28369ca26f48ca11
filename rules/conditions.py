"""Rule conditions: a small, checked expression language compiled into Python closures.

Grammar (a subset of Python expressions, parsed with `ast`):

    expr   := expr and expr | expr or expr | not expr | (expr)
            | operand op operand [op operand ...]     op: == != < <= > >=
            | bool_metric | true | false
    operand:= metric | mean(metric, 'window') | number | 'string' | true | false

Names are the metric names of the rule's device type. `mean(metric, '1h')` is the mean of the
metric's readings in the last window of device time. Logic is three-valued: a comparison that
reads a value not yet known is unknown, `not` of unknown is unknown, and a condition that ends
unknown does not hold.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ground import datafiles
from ground.contract import BOOL, DEVICE_TYPES, NUMBER, MetricType
from ground.datafiles import MAX_DURATION_MS as MAX_DURATION_MS  # re-exported: durations live in ground
from ground.datafiles import DurationError
from ground.datafiles import format_duration as format_duration


class ConditionError(ValueError):
    """An expression that is not allowed or does not fit the device type; the message names the part."""


def parse_duration(text: object) -> int:
    """Milliseconds from `15s`, `10min`, `2h` … (ground.datafiles.parse_duration), as a ConditionError."""
    try:
        return datafiles.parse_duration(text)
    except DurationError as exc:
        raise ConditionError(str(exc)) from None


def mean_key(metric: str, window_ms: int) -> str:
    """The key under which a device's rolling mean of `metric` is kept beside its metrics."""
    return f"mean({metric}, {format_duration(window_ms)})"


@dataclass(frozen=True, slots=True)
class Window:
    """A rolling mean a condition reads: its value key, the metric and the window length."""

    key: str
    metric: str
    ms: int


Values = Mapping[str, Any]
Test = Callable[[Values], bool]
_Tri = Callable[[Values], "bool | None"]


@dataclass(frozen=True, slots=True)
class Condition:
    """A compiled condition: `test(values)` is True only when it holds on known values."""

    source: str
    test: Test
    reads: tuple[str, ...]  # the value keys it reads: metric names and mean keys
    windows: tuple[Window, ...]


_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
_OP_TEXT = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}
_OTHER_OP_TEXT = {"In": "in", "NotIn": "not in", "Is": "is", "IsNot": "is not"}
_BOOL_NAMES = {"true": True, "false": False, "True": True, "False": False}


@dataclass(frozen=True, slots=True)
class _Operand:
    """One side of a comparison: a value key to read, or a constant."""

    text: str
    kind: MetricType | None  # NUMBER, BOOL or the enum's values; None for a string constant
    key: str | None = None  # set for metrics and means
    metric: str | None = None  # the metric it reads, for messages
    value: Any = None  # set for constants


def _kind_name(kind: MetricType | None) -> str:
    if kind is None:
        return "a string"
    if isinstance(kind, tuple):
        return "one of " + "/".join(kind)
    return "a boolean" if kind == BOOL else "a number"


class _Compiler:
    def __init__(self, source: str, device_type: str) -> None:
        dtype = DEVICE_TYPES.get(device_type)
        if dtype is None:
            raise ConditionError(f"unknown device type {device_type!r}")
        self.source = source.strip()
        self.device_type = device_type
        self.metrics = dtype.metrics
        self.reads: dict[str, None] = {}
        self.windows: dict[str, Window] = {}

    def part(self, node: ast.AST) -> str:
        return ast.get_source_segment(self.source, node) or ast.unparse(node)

    def compile(self) -> Condition:
        try:
            tree = ast.parse(self.source, mode="eval")
        except SyntaxError as exc:
            raise ConditionError(f"{self.source!r} is not a valid expression ({exc.msg})") from None
        tri = self.logic(tree.body)

        def test(values: Values, tri: _Tri = tri) -> bool:
            return tri(values) is True

        return Condition(self.source, test, tuple(self.reads), tuple(self.windows.values()))

    # Nodes that give a truth value.
    def logic(self, node: ast.expr) -> _Tri:
        if isinstance(node, ast.BoolOp):
            parts = tuple(self.logic(v) for v in node.values)
            return _and(parts) if isinstance(node.op, ast.And) else _or(parts)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return _not(self.logic(node.operand))
        if isinstance(node, ast.Compare):
            return self.compare(node)
        if isinstance(node, ast.Name) and node.id in self.metrics:
            kind = self.metrics[node.id]
            if kind != BOOL:
                raise ConditionError(
                    f"metric {node.id!r} is {_kind_name(kind)}, not a boolean: compare it, "
                    f"as in {node.id} == ..."
                )
            self.reads[node.id] = None
            return _read(node.id)
        constant = self.constant(node)
        if constant is not None and isinstance(constant.value, bool):
            return _const(constant.value)
        if isinstance(node, ast.Name | ast.Call):
            self.operand(node)  # raises: unknown name or bad call
        raise ConditionError(f"{self.part(node)!r} is not a condition")

    def compare(self, node: ast.Compare) -> _Tri:
        operands = [self.operand(node.left)] + [self.operand(c) for c in node.comparators]
        tests = []
        for left, op, right in zip(operands, node.ops, operands[1:], strict=False):
            if type(op) not in _COMPARE:
                name = _OTHER_OP_TEXT.get(type(op).__name__, type(op).__name__)
                raise ConditionError(f"operator {name!r} is not allowed (only == != < <= > >=)")
            self.check_types(left, op, right)
            tests.append(_comparison(left, _COMPARE[type(op)], right))
        return tests[0] if len(tests) == 1 else _and(tuple(tests))

    def check_types(self, left: _Operand, op: ast.cmpop, right: _Operand) -> None:
        if left.key is None and right.key is None:
            raise ConditionError(f"{left.text} {_OP_TEXT[type(op)]} {right.text} compares two constants")
        for this, other in ((left, right), (right, left)):
            if this.key is None:
                continue
            name = this.metric
            kind = this.kind
            if (isinstance(kind, tuple) or kind == BOOL) and not isinstance(op, ast.Eq | ast.NotEq):
                raise ConditionError(f"metric {name!r} is {_kind_name(kind)}: only == and != compare it")
            if isinstance(kind, tuple) and other.key is None and other.kind is None:
                if other.value not in kind:
                    raise ConditionError(f"metric {name!r} is {_kind_name(kind)}, never {other.value!r}")
                continue
            if other.kind != kind:
                raise ConditionError(
                    f"metric {name!r} is {_kind_name(kind)}, compared with {other.text} "
                    f"({_kind_name(other.kind)})"
                )

    # Nodes that give a value.
    def operand(self, node: ast.expr) -> _Operand:
        text = self.part(node)
        if isinstance(node, ast.Name) and node.id in self.metrics:
            self.reads[node.id] = None
            return _Operand(text, self.metrics[node.id], key=node.id, metric=node.id)
        if isinstance(node, ast.Call):
            return self.mean(node, text)
        constant = self.constant(node)
        if constant is not None:
            return constant
        if isinstance(node, ast.Name):
            raise ConditionError(f"unknown metric {node.id!r} for {self.device_type}")
        raise ConditionError(f"{text!r} is not allowed (only metrics, constants and mean(metric, 'window'))")

    def constant(self, node: ast.expr) -> _Operand | None:
        text = self.part(node)
        if isinstance(node, ast.Name) and node.id in _BOOL_NAMES:
            return _Operand(text, BOOL, value=_BOOL_NAMES[node.id])
        negate = False
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            negate = isinstance(node.op, ast.USub)
            node = node.operand
            if not (isinstance(node, ast.Constant) and _is_number(node.value)):
                return None
        if not isinstance(node, ast.Constant):
            return None
        value = node.value
        if isinstance(value, bool):
            return _Operand(text, BOOL, value=value)
        if isinstance(value, int | float):
            return _Operand(text, NUMBER, value=-value if negate else value)
        if isinstance(value, str):
            return _Operand(text, None, value=value)
        raise ConditionError(f"{text!r} is not allowed: constants are numbers, strings, true and false")

    def mean(self, node: ast.Call, text: str) -> _Operand:
        if not (isinstance(node.func, ast.Name) and node.func.id == "mean"):
            raise ConditionError(f"{text!r}: mean(metric, 'window') is the only function")
        if node.keywords or len(node.args) != 2:
            raise ConditionError(f"{text!r}: write mean(metric, 'window'), as in mean(co2_ppm, '1h')")
        metric_node, window_node = node.args
        if not isinstance(metric_node, ast.Name):
            raise ConditionError(f"{text!r}: the first argument of mean() is a metric name")
        metric = metric_node.id
        if metric not in self.metrics:
            raise ConditionError(f"unknown metric {metric!r} for {self.device_type}")
        if self.metrics[metric] != NUMBER:
            raise ConditionError(f"{text!r}: metric {metric!r} is {_kind_name(self.metrics[metric])}")
        if not (isinstance(window_node, ast.Constant) and isinstance(window_node.value, str)):
            raise ConditionError(f"{text!r}: the window is a quoted duration, as in '1h'")
        try:
            window_ms = parse_duration(window_node.value)
        except ConditionError as exc:
            raise ConditionError(f"{text!r}: {exc}") from None
        if window_ms <= 0:
            raise ConditionError(f"{text!r}: the window must be longer than 0")
        key = mean_key(metric, window_ms)
        self.reads[key] = None
        self.windows[key] = Window(key, metric, window_ms)
        return _Operand(text, NUMBER, key=key, metric=metric)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _read(key: str) -> _Tri:
    def read(values: Values) -> bool | None:
        return values.get(key)

    return read


def _const(value: bool) -> _Tri:
    def const(values: Values) -> bool | None:
        return value

    return const


def _not(inner: _Tri) -> _Tri:
    def negate(values: Values) -> bool | None:
        x = inner(values)
        return None if x is None else not x

    return negate


def _and(parts: tuple[_Tri, ...]) -> _Tri:
    if len(parts) == 2:
        a, b = parts

        def and2(values: Values) -> bool | None:
            x = a(values)
            if x is False:
                return False
            y = b(values)
            if y is False:
                return False
            return None if x is None or y is None else True

        return and2

    def and_n(values: Values) -> bool | None:
        unknown = False
        for part in parts:
            x = part(values)
            if x is False:
                return False
            if x is None:
                unknown = True
        return None if unknown else True

    return and_n


def _or(parts: tuple[_Tri, ...]) -> _Tri:
    def or_n(values: Values) -> bool | None:
        unknown = False
        for part in parts:
            x = part(values)
            if x is True:
                return True
            if x is None:
                unknown = True
        return None if unknown else False

    return or_n


def _comparison(left: _Operand, op: Callable[[Any, Any], bool], right: _Operand) -> _Tri:
    lkey, rkey = left.key, right.key
    if lkey is not None and rkey is None:
        c = right.value

        def metric_const(values: Values) -> bool | None:
            x = values.get(lkey)
            return None if x is None else op(x, c)

        return metric_const
    if lkey is None and rkey is not None:
        c = left.value

        def const_metric(values: Values) -> bool | None:
            y = values.get(rkey)
            return None if y is None else op(c, y)

        return const_metric

    def metric_metric(values: Values) -> bool | None:
        x = values.get(lkey)  # type: ignore[arg-type]
        y = values.get(rkey)  # type: ignore[arg-type]
        return None if x is None or y is None else op(x, y)

    return metric_metric


def compile_condition(source: str, device_type: str) -> Condition:
    """Check `source` against the metrics of `device_type` and compile it; raises ConditionError."""
    if not isinstance(source, str) or not source.strip():
        raise ConditionError("a condition is a non-empty string")
    return _Compiler(source, device_type).compile()
