"""A ticket resolved through another worker's API clears its latched alarms in the owner's engine."""

from __future__ import annotations

from facility.resolutions import Resolutions
from ground.clock import now_ms
from records.db import Database
from records.states import CauseClass
from tests.conftest import FedPipeline
from tickets.actions import ActionFields
from tickets.lifecycle import Action
from tickets.service import TicketFilter, TicketService

BUTTON = "facility/v1/s1/elevator/elev-9/event"
RESOLVED = ActionFields(
    cause="passenger pressed it by mistake",
    measures="checked the car",
    result="in service",
    emergency_plan_started=True,
    leadership_informed=True,
    temporary_measures="none needed",
    cause_class=CauseClass.STAFF,
)


def test_the_owner_hears_a_resolve_made_elsewhere_and_the_button_raises_again(
    db: Database, pipeline: FedPipeline
) -> None:
    engine = pipeline.pipeline.engine
    heard = Resolutions(db, frozenset({"s1"}), pipeline.pipeline.on_ticket_change)
    elsewhere = Resolutions(db, frozenset({"s2"}), pipeline.pipeline.on_ticket_change)
    assert heard.poll() == 0 and elsewhere.poll() == 0  # from now on
    pipeline.deliver(BUTTON, {"ts": now_ms(), "seq": 0, "code": "ALARM_BUTTON"})
    [ticket] = pipeline.tickets.list(TicketFilter())
    assert engine.active() == [("s1", "elev-9", "alarm_button")]

    # Another worker's API: a ticket service of its own, whose listeners are not this pipeline.
    other = TicketService(db)
    for action, fields in [
        (Action.ACKNOWLEDGE, ActionFields()),
        (Action.START, ActionFields()),
        (Action.RESOLVE, RESOLVED),
    ]:
        other.act(ticket.id, action, fields, "eng-7")
    assert engine.active() == [("s1", "elev-9", "alarm_button")], "nothing told this engine yet"
    assert elsewhere.poll() == 0  # not its site
    assert heard.poll() == 1
    assert engine.active() == []
    assert heard.poll() == 0  # once

    pipeline.deliver(BUTTON, {"ts": now_ms() + 1, "seq": 1, "code": "ALARM_BUTTON"})
    [again] = pipeline.tickets.list(TicketFilter())
    assert (again.id, again.status) == (ticket.id, "open"), "the press reopens it"
