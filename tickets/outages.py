"""Outages: devices of a site that fall silent together are one incident, not a ticket each.

When a feed stops (a gateway, a switch, a building's network), every device behind it trips the
offline rule within minutes. Alarm-management practice (ISA-18.2, EEMUA 191) calls more than
about ten alarms in ten minutes for one operator a flood; a duty engineer cannot work a list of a
thousand `offline` tickets, and the one real fault is buried in it. So:

- `outage_devices` (3) devices of one site going offline within `outage_window_s` (300 s) open
  one incident ticket for the site (rule `outage`); each device's offline alarm becomes its child
  (the alarm's ticket is the incident). Tickets of their own that the first devices opened, still
  untouched by anyone and holding nothing but that alarm, are closed into the incident.
- A gateway that says it is offline (its own retained status and will) opens the incident at once:
  its outage is the cause, and the silence of the devices behind it joins that incident.
- While the incident is open, every further offline alarm of the site joins it.
- Devices that come back clear their alarms; when no child is active, the incident resolves itself.

Only the offline rules are ever folded: an entrapment or a fire alarm always has its own ticket.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from ground.severity import Severity
from records.models import Alarm, Device, Ticket
from rules.parents import GATEWAY_OFFLINE
from rules.rule import OFFLINE
from tickets.changes import ChangeKind, TicketChange
from tickets.lifecycle import Source, Status
from tickets.store import OPEN_STATUSES, SYSTEM, TicketStore, active_alarm, resolve_due

OUTAGE = "outage"  # the rule of an incident ticket
OUTAGE_RULES = frozenset({OFFLINE, GATEWAY_OFFLINE})


def outage_key(site: str) -> str:
    """The incident's key among tickets' alarm keys; a device's is `site/device`, so they never meet."""
    return f"{OUTAGE}:{site}"


class OutageIntake(TicketStore):
    """Offline alarms folded into their site's outage incident; the incident resolved when all are back."""

    def _outage_for(
        self, s: Session, alarm: Alarm, now: datetime, changes: list[TicketChange], waiting: int = 0
    ) -> Ticket | None:
        """The incident this offline alarm belongs to, with the alarm attached; None: a ticket of its own.

        `waiting`: offline raises of the site that arrived with this one and are still to be applied.
        """
        if self.outage_devices <= 0:
            return None
        # Locked (PostgreSQL) so a person's action on the incident waits for this one.
        incident = s.scalars(
            select(Ticket).where(Ticket.alarm_key == outage_key(alarm.site)).with_for_update()
        ).one_or_none()
        if incident is not None and incident.status == Status.RESOLVED and not self._recent(incident, now):
            # Devices offline again soon after are the same trouble; later, a new one.
            self._close_as_past(s, incident, now, "new outage after the cooldown")
            incident = None
        if incident is not None and incident.status in OPEN_STATUSES:
            self._attach(s, incident, alarm, now, changes)
        else:
            if alarm.rule == GATEWAY_OFFLINE or self._gateway_down(s, alarm):
                together = [alarm]
            else:
                together = self._offline_together(s, alarm)
                if len(together) + waiting < self.outage_devices:
                    return None
            if incident is None:
                incident = self._new_incident(s, alarm.site, now, changes)
            else:  # resolved within the cooldown
                self._reopen_recurrence(s, incident, now, OFFLINE, changes)
                incident.occurrences = 0  # counts the devices that join again
            for child in together:
                self._attach(s, incident, child, now, changes)
        if alarm.rule == GATEWAY_OFFLINE:
            # Devices behind it that went silent first, and raised no incident yet, join it too.
            for child in self._behind_gateway(s, alarm):
                self._attach(s, incident, child, now, changes)
        return incident

    def _offline_together(self, s: Session, alarm: Alarm) -> list[Alarm]:
        """Active offline alarms of the site raised within the window of this one (it included)."""
        since = alarm.raised_at - timedelta(seconds=self.outage_window_s)
        return list(
            s.scalars(
                select(Alarm)
                .where(
                    Alarm.site == alarm.site,
                    Alarm.rule == OFFLINE,
                    Alarm.active.is_(True),
                    Alarm.held.is_(False),
                    Alarm.raised_at >= since,
                )
                .order_by(Alarm.id)
            )
        )

    def _gateway_down(self, s: Session, alarm: Alarm) -> bool:
        """Whether the device reports through a gateway that says it is offline."""
        device = self._device(s, alarm.site, alarm.device_id)
        if device is None or device.gateway is None:
            return False
        return active_alarm(s, alarm.site, device.gateway, GATEWAY_OFFLINE) is not None

    def _behind_gateway(self, s: Session, gateway_alarm: Alarm) -> list[Alarm]:
        """Active offline alarms of the devices that report through this gateway, not yet in an incident."""
        return list(
            s.scalars(
                select(Alarm)
                .join(Device, (Device.site == Alarm.site) & (Device.device_id == Alarm.device_id))
                .where(
                    Alarm.site == gateway_alarm.site,
                    Device.gateway == gateway_alarm.device_id,
                    Alarm.rule == OFFLINE,
                    Alarm.active.is_(True),
                    Alarm.held.is_(False),
                )
            )
        )

    def _new_incident(self, s: Session, site: str, now: datetime, changes: list[TicketChange]) -> Ticket:
        """A new incident for the site."""
        incident = Ticket(
            site=site,
            device_id=None,
            device_type=None,
            rule=OUTAGE,
            severity=Severity.ROUTINE,
            status=Status.OPEN,
            source=Source.ALARM,
            title=f"Outage — site {site}",
            description=(
                f"Devices of site {site} stopped reporting together: one incident for the common cause."
                " Each device's offline alarm is a child of this ticket (GET /api/v1/alarms?ticket_id=…);"
                " it resolves itself when every device reports again."
            ),
            opened_at=now,
            response_due=now + timedelta(seconds=Severity.ROUTINE.response_due_s),
            occurrences=0,  # counts the devices that join
            last_occurrence_at=now,
            alarm_key=outage_key(site),
        )
        incident.resolve_due = resolve_due(incident.severity, incident.response_due)
        s.add(incident)
        s.flush()
        self._audit(s, incident, SYSTEM, "open", {"rule": OUTAGE, "class": incident.severity.value})
        changes.append(self._change(incident, ChangeKind.OPENED))
        return incident

    def _attach(
        self, s: Session, incident: Ticket, alarm: Alarm, now: datetime, changes: list[TicketChange]
    ) -> None:
        """Make the alarm the incident's child, closing an untouched ticket of its own; the class may rise."""
        if alarm.ticket_id == incident.id:
            return  # attached already (a status replayed on a resubscribe)
        own = s.get(Ticket, alarm.ticket_id) if alarm.ticket_id is not None else None
        alarm.ticket_id = incident.id
        if alarm.rule == GATEWAY_OFFLINE:
            # The cause, said once in its words; the devices are counted, not listed, in the title.
            cause = f"Gateway {alarm.device_id} reports itself offline: the devices behind it are silent."
            incident.description = f"{incident.description}\n{cause}"
            self._audit(s, incident, SYSTEM, "gateway_offline", {"gateway": alarm.device_id})
        else:
            incident.occurrences += 1
            incident.last_occurrence_at = now
            incident.title = f"Outage — site {incident.site}: {incident.occurrences:,} devices offline"
        if own is not None and self._only_offline(s, own):
            own.status, own.closed_at, own.alarm_key = Status.CLOSED, now, None
            self._audit(s, own, SYSTEM, "close", {"reason": "part of an outage", "incident": incident.id})
            changes.append(self._change(own, ChangeKind.CLOSED))
        severity = Severity(alarm.severity)
        if severity > Severity(incident.severity):
            self._raise_class(s, incident, severity, OUTAGE, changes)

    def _only_offline(self, s: Session, ticket: Ticket) -> bool:
        """A ticket nobody has taken up whose only active alarm is the offline rule's."""
        if ticket.status != Status.OPEN or ticket.source != Source.ALARM:
            return False
        rules = s.scalars(
            select(Alarm.rule).where(Alarm.ticket_id == ticket.id, Alarm.active.is_(True))
        ).all()
        return all(rule == OFFLINE for rule in rules)

    def _after_clear(self, s: Session, alarm: Alarm, now: datetime, changes: list[TicketChange]) -> None:
        """A child came back: the incident resolves itself when none is left offline."""
        if alarm.rule not in OUTAGE_RULES or alarm.ticket_id is None:
            return
        incident = s.get(Ticket, alarm.ticket_id, with_for_update=True)
        if incident is None or incident.rule != OUTAGE:
            return
        if incident.status not in OPEN_STATUSES:
            return
        # One look-up on (ticket_id, active), not a count: children come back by the thousand.
        left = s.scalars(
            select(Alarm.id).where(Alarm.ticket_id == incident.id, Alarm.active.is_(True)).limit(1)
        ).first()
        if left is not None:
            return
        incident.status, incident.resolved_at = Status.RESOLVED, now
        incident.result = "Every device of the outage reports again."
        self._audit(s, incident, SYSTEM, "resolve", {"reason": "every device is back"})
        changes.append(self._change(incident, ChangeKind.RESOLVED))
