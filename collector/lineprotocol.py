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
from typing import Any, NamedTuple

from facility.contract import Kind, Message


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
    return ",".join(f"{name}={_field(value)}" for name, value in fields.items())


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


def _split(text: str, sep: str) -> list[str]:
    """Split on `sep` outside double quotes and not after a backslash."""
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            current.append(text[i : i + 2])
            i += 2
            continue
        if c == '"':
            quoted = not quoted
        elif c == sep and not quoted:
            parts.append("".join(current))
            current = []
            i += 1
            continue
        current.append(c)
        i += 1
    parts.append("".join(current))
    return parts


def _unescape(text: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


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


def parse_line(line: str) -> ParsedLine:
    """Parse one line-protocol line into measurement, tags, fields and time."""
    sections = _split(line.strip(), " ")
    if len(sections) not in (2, 3):
        raise ValueError(f"line protocol: expected 2 or 3 sections in {line[:80]!r}")
    key = _split(sections[0], ",")
    tags: dict[str, str] = {}
    for pair in key[1:]:
        k, v = _split(pair, "=")
        tags[_unescape(k)] = _unescape(v)
    fields: dict[str, Any] = {}
    for pair in _split(sections[1], ","):
        k, v = pair.split("=", 1)
        fields[_unescape(k)] = _parse_value(v)
    time = int(sections[2]) if len(sections) == 3 else None
    return ParsedLine(_unescape(key[0]), tags, fields, time)
