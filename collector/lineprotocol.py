"""InfluxDB line protocol for our points: formatted by hand (cheap) and parsed back (embedded store, tests).

Layout of what we write, time in milliseconds:
  telemetry: `{device_type},site=S,device_id=D metric=...,seq=Ni TS`
  events:    `events,site=S,device_id=D,device_type=T,code=C state="raised",seq=Ni,detail="{...}" TS`
  status:    `status,site=S,device_id=D,device_type=T state="offline" TS`
Every number is written as a float (a metric that is sometimes 12 and sometimes 12.5 must not
change field type, which InfluxDB refuses), except `seq`, which is an integer field.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from ground.contract import Kind, Message

# A line the service derived (an alarm, a ticket change, a site's counts) and its time in ms, and
# where such lines go: the collector's durable buffer, with the readings.
Point = tuple[str, int]
Sink = Callable[[Sequence[Point]], None]


def _string_field(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _field(value: Any) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return _string_field(value)
    return repr(float(value))


def format_fields(fields: dict[str, Any]) -> str:
    """Format a field set; names are contract names ([a-z][a-z0-9_]*), so they need no escaping."""
    # Once per reading: the common types inline, rather than a call per field.
    parts: list[str] = []
    add = parts.append
    for name, value in fields.items():
        t = type(value)
        if t is float:
            add(f"{name}={value!r}")
        elif t is bool:
            add(f"{name}=true" if value else f"{name}=false")
        elif t is str and '"' not in value and "\\" not in value:
            add(f'{name}="{value}"')
        else:
            add(f"{name}={_field(value)}")
    return ",".join(parts)


def format_message(m: Message) -> str:
    """The line-protocol line that stores one decoded message."""
    seq = "" if m.seq is None else f",seq={m.seq}i"
    if m.kind is Kind.TELEMETRY:
        # site and device_id match [a-z0-9_-], so they need no escaping either.
        return f"{m.device_type},site={m.site},device_id={m.device_id} {format_fields(m.body)}{seq} {m.ts}"
    if m.kind is Kind.EVENT:
        body = m.body
        state = "" if body["state"] is None else f"state={_string_field(body['state'])},"
        detail = _string_field(json.dumps(body["detail"], separators=(",", ":"), ensure_ascii=False))
        return (
            f"events,site={m.site},device_id={m.device_id},device_type={m.device_type},"
            f"code={body['code']} {state}detail={detail}{seq} {m.ts}"
        )
    return (
        f"status,site={m.site},device_id={m.device_id},device_type={m.device_type} "
        f"state={_string_field(m.body['state'])} {m.ts}"
    )


_ESCAPED = re.compile(r"\\(.)")


def _unescape(text: str) -> str:
    return _ESCAPED.sub(r"\1", text) if "\\" in text else text


def _parse_value(raw: str) -> Any:
    if raw.startswith('"'):
        return _unescape(raw[1:-1])
    if raw in ("true", "t", "T", "True", "TRUE"):
        return True
    if raw in ("false", "f", "F", "False", "FALSE"):
        return False
    if raw.endswith("i") or raw.endswith("u"):
        return int(raw[:-1])
    return float(raw)


class ParsedLine(NamedTuple):
    """One parsed point."""

    measurement: str
    tags: dict[str, str]
    fields: dict[str, Any]
    time: int | None


# Regular expressions in the "unrolled loop" form rather than a character loop or alternations:
# the embedded store parses every line it stores, in the collector's process.
_KEY = re.compile(r"[^ \\]*(?:\\.[^ \\]*)*")
_MEASUREMENT = re.compile(r"[^,\\]*(?:\\.[^,\\]*)*")
_TAG = re.compile(r",([^,=\\]*(?:\\.[^,=\\]*)*)=([^,\\]*(?:\\.[^,\\]*)*)")
_FIELD = re.compile(r'([^,=\\]*(?:\\.[^,=\\]*)*)=("[^"\\]*(?:\\.[^"\\]*)*"|[^,]*)(?:,|$)')


def parse_line(line: str) -> ParsedLine:
    """Parse one line-protocol line into measurement, tags, fields and time."""
    line = line.strip()
    key_end = _KEY.match(line).end()  # type: ignore[union-attr]  # matches the empty string at least
    if key_end == 0 or key_end >= len(line) - 1:
        raise ValueError(f"line protocol: expected 'measurement[,tags] fields [time]' in {line[:80]!r}")
    key, rest = line[:key_end], line[key_end + 1 :]
    head, space, tail = rest.rpartition(" ")
    time: int | None = None
    if space and tail.lstrip("-").isdigit():
        rest, time = head, int(tail)
    measurement_end = _MEASUREMENT.match(key).end()  # type: ignore[union-attr]
    tags = {_unescape(k): _unescape(v) for k, v in _TAG.findall(key, measurement_end)}
    fields: dict[str, Any] = {}
    pos = 0
    while pos < len(rest):
        m = _FIELD.match(rest, pos)
        if m is None or not m.group(1):
            raise ValueError(f"line protocol: bad field set in {line[:80]!r}")
        fields[_unescape(m.group(1))] = _parse_value(m.group(2))
        pos = m.end()
    if not fields:
        raise ValueError(f"line protocol: no fields in {line[:80]!r}")
    return ParsedLine(_unescape(key[:measurement_end]), tags, fields, time)
