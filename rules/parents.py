"""A gateway's own status as an alarm: the parent whose outage explains its devices' silence.

A gateway publishes a retained `online` on `facility/v1/{site}/gateway/{id}/status`, with
`offline` as its will. That is no device of the contract, so no rule of the catalogue sees it;
its `offline` raises `gateway_offline` and its `online` clears it, and tickets fold the devices
behind it into the site's outage incident (tickets/outages.py).
"""

from __future__ import annotations

from ground.contract import Message
from ground.events import AlarmEvent
from ground.severity import Severity

GATEWAY_OFFLINE = "gateway_offline"
# Major: a gateway speaks for a plant room or a building's panels, so its silence hides them all.
GATEWAY_OFFLINE_CLASS = Severity.MAJOR


def gateway_event(m: Message) -> AlarmEvent | None:
    """The alarm event a gateway's status message means; None for a state other than the two."""
    state = m.body.get("state")
    if state not in ("online", "offline"):
        return None
    return AlarmEvent(
        kind="raised" if state == "offline" else "cleared",
        site=m.site,
        device_type=m.device_type,
        device_id=m.device_id,
        rule=GATEWAY_OFFLINE,
        severity=GATEWAY_OFFLINE_CLASS,
        ts=m.ts,
        title="Gateway offline",
        detail={"reason": "status"},
    )
