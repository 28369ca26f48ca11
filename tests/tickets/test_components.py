"""A fire panel's ticket lists every component that alarmed, on SQLite and on a real PostgreSQL."""

from __future__ import annotations

from ground.events import AlarmEvent
from ground.severity import Severity
from tickets.service import TicketService

T0 = 1_795_749_124_000


def fire(component: str, ts: int, components: list[str], kind: str = "raised") -> AlarmEvent:
    """A fire alarm event of the rules engine, as one component raises or clears it."""
    return AlarmEvent(
        kind=kind,  # type: ignore[arg-type]
        site="s1",
        device_type="fire_panel",
        device_id="fp-1",
        rule="fire_alarm",
        severity=Severity.EMERGENCY,
        ts=ts,
        title="Fire alarm",
        detail={
            "code": "FIRE_ALARM",
            "state": kind,
            "detail": {"zone": "3F", "component": component},
            "components": components,
        },
    )


def test_a_second_component_is_listed_on_the_ticket_once(tickets: TicketService) -> None:
    ticket_id = tickets.apply_alarm(fire("smoke-0031", T0, ["smoke-0031"]))
    assert ticket_id is not None
    assert tickets.get(ticket_id).description == "Component smoke-0031"
    both = ["smoke-0031", "smoke-0032"]
    assert tickets.apply_alarm(fire("smoke-0032", T0 + 1000, both)) == ticket_id
    t = tickets.get(ticket_id)
    assert t.description == "Component smoke-0031\nComponent smoke-0032"
    assert t.occurrences == 2
    # The same raise delivered again adds nothing.
    tickets.apply_alarm(fire("smoke-0032", T0 + 1000, both))
    t = tickets.get(ticket_id)
    assert t.occurrences == 2 and t.description.count("smoke-0032") == 1  # type: ignore[union-attr]


def test_two_components_in_the_same_millisecond_are_both_listed(tickets: TicketService) -> None:
    ticket_id = tickets.apply_alarm(fire("smoke-0031", T0, ["smoke-0031"]))
    assert tickets.apply_alarm(fire("heat-0007", T0, ["heat-0007", "smoke-0031"])) == ticket_id
    assert ticket_id is not None
    t = tickets.get(ticket_id)
    assert t.description == "Component smoke-0031\nComponent heat-0007"
    [a] = tickets.alarms(active_only=True)
    assert a.count == 2
