"""Alarm events become alarms and tickets: one open ticket per device, races absorbed."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ground.clock import from_ms, to_ms
from ground.events import AlarmEvent
from ground.severity import Severity
from records.models import Alarm, Ticket
from tickets.changes import ChangeKind, TicketChange
from tickets.components import component_line, is_known, with_component
from tickets.joins import report_for_alarm
from tickets.lifecycle import Source, Status
from tickets.outages import OUTAGE, OUTAGE_RULES, OutageIntake
from tickets.store import SYSTEM, NotFound, active_alarm, location_of, log, resolve_due


def _active_alarm(s: Session, event: AlarmEvent) -> Alarm | None:
    """The device's active alarm of the event's rule, if any."""
    return active_alarm(s, event.site, event.device_id, event.rule)


class AlarmIntake(OutageIntake):
    """Records raised and cleared alarms, opening, updating or reopening the device's ticket."""

    def apply_alarm(self, event: AlarmEvent, may_hold: bool = True, offline_waiting: int = 0) -> int | None:
        """Record a raised or cleared alarm; a raise opens or updates the device's ticket. Returns its id.

        A raise a maintenance window holds opens no ticket (None), unless `may_hold` is false.
        `offline_waiting`: offline raises of the same site that follow this one in its batch.
        """
        for attempt in range(5):
            changes: list[TicketChange] = []
            try:
                with self.db.session() as s:
                    ticket_id: int | None = (
                        self._raise(s, event, changes, may_hold, offline_waiting)
                        if event.kind == "raised"
                        else self._clear(s, event, changes)
                    )
            except IntegrityError:
                # Another worker inserted the same alarm or ticket first; read it and go on.
                log.debug(
                    "alarm %s/%s/%s raced another worker (try %d)",
                    event.site,
                    event.device_id,
                    event.rule,
                    attempt + 1,
                )
                continue
            self._tell(changes)
            return ticket_id
        raise RuntimeError(f"could not record alarm {event.rule} on {event.device_id} after 5 tries")

    def apply_alarms(self, events: Sequence[AlarmEvent], offline_waiting: Sequence[int]) -> list[int | None]:
        """Several alarm events in one transaction (an outage's offline alarms); on a race, one at a time."""
        changes: list[TicketChange] = []
        try:
            with self.db.session() as s:
                ids = [
                    self._raise(s, event, changes, True, waiting)
                    if event.kind == "raised"
                    else self._clear(s, event, changes)
                    for event, waiting in zip(events, offline_waiting, strict=True)
                ]
        except IntegrityError:
            return [
                self.apply_alarm(e, offline_waiting=w) for e, w in zip(events, offline_waiting, strict=True)
            ]
        self._tell(changes)
        return ids

    def _raise(
        self, s: Session, event: AlarmEvent, changes: list[TicketChange], may_hold: bool, waiting: int = 0
    ) -> int | None:
        now = self.clock()
        alarm = _active_alarm(s, event)
        raised_at = from_ms(event.ts)
        again = (
            alarm is not None
            and raised_at in (alarm.raised_at, alarm.last_seen)
            # Two components of one panel may raise in the same millisecond.
            and is_known(alarm.detail, event)
        )
        if alarm is not None and again and (alarm.ticket_id is not None or alarm.held):
            # The same raise again (a redelivery, a replay or a second worker): nothing new.
            return alarm.ticket_id
        # Held only while the alarm has no ticket: one raised before the window keeps its ticket.
        fresh = alarm is None or alarm.held
        held = may_hold and fresh and self.holds is not None and self.holds(s, event)
        if alarm is None:
            alarm = Alarm(
                site=event.site,
                device_id=event.device_id,
                device_type=event.device_type,
                rule=event.rule,
                severity=event.severity.value,
                title=event.title,
                active=True,
                raised_at=raised_at,
                last_seen=raised_at,
                count=1,
                detail=_alarm_detail(event),
            )
            s.add(alarm)
        else:
            alarm.count += 1
            alarm.last_seen = raised_at
            alarm.detail = _alarm_detail(event)
        alarm.held = held
        if held:
            s.flush()
            return None
        if event.rule in OUTAGE_RULES:
            s.flush()
            if (incident := self._outage_for(s, alarm, now, changes, waiting)) is not None:
                return incident.id
        ticket = self._ticket_for(s, event, now, changes)
        alarm.ticket_id = ticket.id
        s.flush()
        return ticket.id

    def release_held(self, alarm_ids: Sequence[int]) -> int:
        """Open (or update) the tickets of held alarms still active, as if raised now; how many."""
        opened = 0
        for alarm_id in alarm_ids:
            with self.db.read() as s:
                alarm = s.get(Alarm, alarm_id)
            if alarm is None or not alarm.active or not alarm.held:
                continue
            event = AlarmEvent(
                kind="raised",
                site=alarm.site,
                device_type=alarm.device_type,
                device_id=alarm.device_id,
                rule=alarm.rule,
                severity=Severity(alarm.severity),
                ts=to_ms(self.clock()),
                title=alarm.title,
                detail={k: v for k, v in alarm.detail.items() if k != "latched"},
            )
            # The window has ended: this raise is not held again.
            opened += self.apply_alarm(event, may_hold=False) is not None
        return opened

    def _ticket_for(
        self, s: Session, event: AlarmEvent, now: datetime, changes: list[TicketChange]
    ) -> Ticket:
        """The device's ticket for this alarm: its open one, reopened, or a new one."""
        key = f"{event.site}/{event.device_id}"
        # Locked (PostgreSQL) so a person's action on the same ticket waits for this one.
        ticket = s.scalars(select(Ticket).where(Ticket.alarm_key == key).with_for_update()).one_or_none()
        if ticket is not None and ticket.status == Status.RESOLVED:
            if self._recent(ticket, now):
                self._reopen_recurrence(s, ticket, now, event.rule, changes)
            else:
                self._close_as_past(s, ticket, now, "new fault after the cooldown")
                ticket = None
        if ticket is None and (ticket := report_for_alarm(s, event.site, event.device_id, key)):
            # An occupant reported this device's fault first: the alarm joins that ticket.
            joined = {"rule": event.rule, "class": event.severity.value}
            self._audit(s, ticket, SYSTEM, "alarm_joined", joined)
        if ticket is None:
            device = self._device(s, event.site, event.device_id)
            label = device.label() if device else event.device_id
            ticket = Ticket(
                site=event.site,
                device_id=event.device_id,
                device_type=event.device_type,
                rule=event.rule,
                severity=event.severity.value,
                status=Status.OPEN,
                source=Source(event.source),
                title=f"{event.title} — {label}",
                location=location_of(device) or event.detail.get("location"),
                description=component_line(event),
                opened_at=now,
                response_due=now + timedelta(seconds=event.severity.response_due_s),
                occurrences=1,
                last_occurrence_at=now,
                alarm_key=key,
                patrol_round_id=event.round_id,
            )
            ticket.resolve_due = resolve_due(event.severity, ticket.response_due)
            s.add(ticket)
            s.flush()
            self._audit(
                s,
                ticket,
                SYSTEM,
                "open",
                {"rule": event.rule, "class": event.severity.value, "detail": event.detail},
            )
            changes.append(self._change(ticket, ChangeKind.OPENED))
            return ticket
        ticket.occurrences += 1
        ticket.last_occurrence_at = now
        ticket.description = with_component(ticket.description, event)
        if event.severity > Severity(ticket.severity):
            self._raise_class(s, ticket, event.severity, event.rule, changes)
        else:
            self._audit(s, ticket, SYSTEM, "occurrence", {"rule": event.rule, "detail": event.detail})
            changes.append(self._change(ticket, ChangeKind.RECURRED))
        return ticket

    def _clear(self, s: Session, event: AlarmEvent, changes: list[TicketChange]) -> int | None:
        alarm = _active_alarm(s, event)
        if alarm is None:
            return None
        alarm.active = False
        alarm.cleared_at = from_ms(event.ts)
        if alarm.ticket_id is not None:
            ticket = s.get(Ticket, alarm.ticket_id)
            # An outage's children come back by the hundred: its description counts them instead.
            if ticket is not None and ticket.rule != OUTAGE:
                self._audit(s, ticket, SYSTEM, "alarm_cleared", {"rule": event.rule})
            s.flush()
            self._after_clear(s, alarm, self.clock(), changes)
        return alarm.ticket_id

    def acknowledge_alarm(self, alarm_id: int, actor: str, sites: frozenset[str] | None = None) -> Alarm:
        """Mark an alarm acknowledged (it stays active until its condition clears); of `sites` if given."""
        with self.db.session() as s:
            alarm = s.get(Alarm, alarm_id)
            if alarm is None or (sites is not None and alarm.site not in sites):
                raise NotFound(f"no alarm {alarm_id}")
            if alarm.acknowledged_at is None:
                alarm.acknowledged_at, alarm.acknowledged_by = self.clock(), actor
                if alarm.ticket_id is not None and (ticket := s.get(Ticket, alarm.ticket_id)):
                    self._audit(
                        s, ticket, actor, "alarm_acknowledged", {"alarm": alarm.id, "rule": alarm.rule}
                    )
            return alarm


def _alarm_detail(event: AlarmEvent) -> dict[str, Any]:
    """The event's detail; an instantaneous event's alarm is latched until its ticket is resolved."""
    instantaneous = "code" in event.detail and event.detail.get("state") is None
    return {**event.detail, "latched": True} if instantaneous else dict(event.detail)
