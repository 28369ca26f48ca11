"""Which parts of a device alarmed (a fire panel's detectors), listed on the device's ticket."""

from __future__ import annotations

from typing import Any

from ground.events import AlarmEvent


def component_of(detail: dict[str, Any]) -> str | None:
    """The component an alarm's detail names (`detail.component` of the device's event), if any."""
    inner = detail.get("detail")
    if not isinstance(inner, dict) or not inner.get("component"):
        return None
    return str(inner["component"])


def component_line(event: AlarmEvent) -> str | None:
    """The description's line for the component that raised it: "Component smoke-0031: 3F lobby"."""
    component = component_of(event.detail)
    if component is None:
        return None
    words = [f"Component {component}"]
    inner = event.detail["detail"]
    if inner.get("description"):
        words.append(str(inner["description"]))
    return ": ".join(words)


def with_component(description: str | None, event: AlarmEvent) -> str | None:
    """The ticket's description with the event's component added, unless it is listed already.

    Components are added, never removed: the ticket keeps every component that alarmed, cleared or not.
    """
    line = component_line(event)
    if line is None:
        return description
    name = f"Component {component_of(event.detail)}"
    lines = (description or "").splitlines()
    if any(x == name or x.startswith(f"{name}:") for x in lines):
        return description
    return "\n".join([*lines, line]) if description else line


def is_known(alarm_detail: dict[str, Any], event: AlarmEvent) -> bool:
    """Whether the alarm has heard of the event's component already (or the event names none)."""
    component = component_of(event.detail)
    if component is None:
        return True
    known = alarm_detail.get("components") or [component_of(alarm_detail)]
    return component in known
