"""People's tickets and what people do to them, as the lifecycle allows, each step audited."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ground.severity import Severity
from records.models import Alarm, Ticket
from records.states import CauseClass
from tickets.changes import DONE, ChangeKind
from tickets.lifecycle import Action, Source, Status, TicketFacts, TransitionRefused, next_status
from tickets.store import OPEN_STATUSES, NotFound, TicketStore, location_of, reopen, resolve_due


@dataclass
class ActionFields:
    """What a person may send with an action."""

    assignee: str | None = None
    note: str | None = None
    cause: str | None = None
    measures: str | None = None
    result: str | None = None
    emergency_plan_started: bool | None = None
    leadership_informed: bool | None = None
    temporary_measures: str | None = None
    followup: str | None = None
    # §9.2.1 on resolve; §9.1.1 on closing an occupant's ticket.
    cause_class: CauseClass | None = None
    satisfaction: int | None = None
    satisfaction_comment: str | None = None


@dataclass
class NewTicket:
    """A ticket not from an alarm: an occupant's report (§4.2.1), a patrol finding, a maintenance plan."""

    site: str
    title: str
    severity: Severity = Severity.ROUTINE
    source: Source = Source.OCCUPANT
    description: str | None = None
    device_id: str | None = None
    location: str | None = None
    reporter: str | None = None
    # How to reach the reporter, where it is not in `reporter` already (kept in the audit trail).
    contact: str | None = None
    patrol_round_id: int | None = None
    # Planned work is due at its own date rather than the class's response time.
    response_due: datetime | None = None
    assignee: str | None = None


# Run inside an action's transaction once the lifecycle allows it, the ticket changed: may refuse
# the action (TransitionRefused) or record what it completes elsewhere (a work order's done time).
ActionCheck = Callable[[Session, Ticket, Action, str], None]
# Run inside an opening's transaction once the ticket has its id: what else the opening records (a
# work order); whatever it raises undoes the opening.
Attach = Callable[[Session, Ticket], None]


@dataclass
class PeopleActions(TicketStore):
    """Tickets people open (occupants' reports, findings) and the actions they take on any ticket."""

    action_checks: list[ActionCheck] = field(default_factory=list)

    def open_for_device(self, site: str, device_id: str) -> Ticket | None:
        """The device's newest ticket that is not yet resolved, whatever opened it."""
        with self.db.read() as s:
            return s.scalars(
                select(Ticket)
                .where(
                    Ticket.site == site,
                    Ticket.device_id == device_id,
                    Ticket.status.in_([st.value for st in OPEN_STATUSES]),
                )
                .order_by(Ticket.id.desc())
                .limit(1)
            ).one_or_none()

    def corroborate(self, ticket_id: int, actor: str, detail: dict[str, Any]) -> None:
        """Add a report of the same fault (a patrol finding) to a ticket rather than open a second."""
        with self.db.session() as s:
            ticket = s.get(Ticket, ticket_id)
            if ticket is None:
                raise NotFound(f"no ticket {ticket_id}")
            ticket.occurrences += 1
            ticket.last_occurrence_at = self.clock()
            self._audit(s, ticket, actor, "corroborated", detail)
            change = self._change(ticket, ChangeKind.CORROBORATED)
        self._tell([change])

    def open_ticket(self, new: NewTicket, actor: str, attach: Attach | None = None) -> Ticket:
        """Open a ticket that no alarm raised (an occupant's report, a patrol finding, a plan)."""
        now = self.clock()
        with self.db.session() as s:
            device = self._device(s, new.site, new.device_id) if new.device_id else None
            ticket = Ticket(
                site=new.site,
                device_id=new.device_id,
                device_type=device.device_type if device else None,
                severity=new.severity.value,
                status=Status.OPEN,
                source=new.source,
                title=new.title,
                description=new.description,
                location=new.location or location_of(device),
                reporter=new.reporter,
                assignee=new.assignee,
                opened_at=now,
                response_due=new.response_due or now + timedelta(seconds=new.severity.response_due_s),
                occurrences=1,
                last_occurrence_at=now,
                patrol_round_id=new.patrol_round_id,
            )
            ticket.resolve_due = resolve_due(new.severity, ticket.response_due)
            s.add(ticket)
            s.flush()
            opening: dict[str, Any] = {"source": new.source.value, "class": new.severity.value}
            if new.contact:
                opening["contact"] = new.contact
            self._audit(s, ticket, actor, "open", opening)
            if attach is not None:
                attach(s, ticket)
            change = self._change(ticket, ChangeKind.OPENED)
        self._tell([change])
        return self.get(ticket.id)

    def act(self, ticket_id: int, action: Action, fields: ActionFields, actor: str) -> Ticket:
        """Apply one action; TransitionRefused (409) or RecordMissing (422) leave the ticket unchanged."""
        now = self.clock()
        with self.db.session() as s:
            ticket = s.get(Ticket, ticket_id, with_for_update=True)
            if ticket is None:
                raise NotFound(f"no ticket {ticket_id}")
            # Planned work is no fault: its record is what was done (a work order's checklist, §4.1.5),
            # not a fault's cause, measures and result (§4.2.4).
            planned = ticket.source == Source.MAINTENANCE
            facts = TicketFacts(
                status=Status(ticket.status),
                severity=Severity(ticket.severity),
                source=Source(ticket.source),
                emergency_plan_started=bool(
                    fields.emergency_plan_started or ticket.emergency_plan_started_at
                ),
                leadership_informed=bool(fields.leadership_informed or ticket.leadership_informed_at),
                temporary_measures=bool(fields.temporary_measures or ticket.temporary_measures),
                cause=planned or bool(fields.cause or ticket.cause),
                measures=planned or bool(fields.measures or ticket.measures),
                result=planned or bool(fields.result or ticket.result),
                followup=bool(fields.followup or ticket.followup),
                assignee_given=bool(fields.assignee),
                cause_class=planned or bool(fields.cause_class or ticket.cause_class),
                satisfaction_given=fields.satisfaction is not None,
            )
            target = next_status(facts, action)
            recorded = self._record_fields(ticket, fields, now)
            ticket.status = target
            if action is Action.ACKNOWLEDGE:
                ticket.acknowledged_at = now
            elif action is Action.START:
                ticket.started_at = now
            elif action is Action.RESOLVE:
                ticket.resolved_at = now
                for alarm in s.scalars(
                    select(Alarm).where(Alarm.ticket_id == ticket.id, Alarm.active.is_(True))
                ):
                    if alarm.detail.get("latched"):
                        alarm.active, alarm.cleared_at = False, now
            elif action is Action.CLOSE:
                ticket.closed_at, ticket.alarm_key = now, None
            elif action is Action.REOPEN:
                if ticket.source == Source.ALARM and ticket.device_id and ticket.alarm_key is None:
                    ticket.alarm_key = f"{ticket.site}/{ticket.device_id}"
                reopen(ticket, now)
            for check in self.action_checks:
                check(s, ticket, action, actor)
            self._audit(s, ticket, actor, action.value, recorded)
            try:
                s.flush()
            except IntegrityError:
                raise TransitionRefused("the device has another open ticket for its alarms") from None
            change = self._change(ticket, DONE[action])
        self._tell([change])
        return self.get(ticket_id)

    @staticmethod
    def _record_fields(ticket: Ticket, fields: ActionFields, now: datetime) -> dict[str, Any]:
        """Copy what the request recorded onto the ticket; returns it for the audit trail."""
        recorded: dict[str, Any] = {}
        for name in (
            "assignee",
            "cause",
            "measures",
            "result",
            "temporary_measures",
            "followup",
            "cause_class",
            "satisfaction",
            "satisfaction_comment",
        ):
            value = getattr(fields, name)
            if value:
                setattr(ticket, name, value)
                recorded[name] = value.value if isinstance(value, CauseClass) else value
        if fields.emergency_plan_started and ticket.emergency_plan_started_at is None:
            ticket.emergency_plan_started_at = now
            recorded["emergency_plan_started"] = True
        if fields.leadership_informed and ticket.leadership_informed_at is None:
            ticket.leadership_informed_at = now
            recorded["leadership_informed"] = True
        if fields.note:
            recorded["note"] = fields.note
        return recorded
