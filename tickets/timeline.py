"""What the service records of alarms, tickets and sites in the time-series store, for dashboards.

Measurements, time in milliseconds (the README's Grafana section lists them for dashboard authors):
  alarms:             tags site, device_id, device_type, rule, class; fields state, title, ticket_id
  tickets:            tags site, class, source, device_type (`none` without a device), change,
                      ticket; fields ticket_id, title, device_id,
                      seconds_to_acknowledge, seconds_to_resolve, target_acknowledge_s, target_resolve_s
  site_status:        tags site; counts of devices, alarms, open tickets and readings
  service_status:     the pipeline's counters
  (patrol_rounds and patrol_checkpoints: patrol/timeline.py)

Tag values are ids from the contract or this service ([a-z0-9_-]) and enum names, so they need no
escaping; free text goes in string fields.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime

from collector.lineprotocol import Point, Sink, format_fields
from ground.clock import now_ms, to_ms
from ground.events import AlarmEvent
from ground.severity import Severity
from records.devices import DeviceDirectory, online
from tickets.service import ChangeKind, TicketChange, TicketService


def alarm_point(event: AlarmEvent, ticket_id: int | None) -> Point:
    """An alarm raised or cleared, at the device time it happened."""
    ticket = f",ticket_id={ticket_id}i" if ticket_id is not None else ""
    line = (
        f"alarms,site={event.site},device_id={event.device_id},device_type={event.device_type},"
        f"rule={event.rule},class={event.severity.value} "
        f"{format_fields({'state': event.kind, 'title': event.title})}{ticket} {event.ts}"
    )
    return line, event.ts


def ticket_point(change: TicketChange, at: datetime) -> Point:
    """A change to a ticket, with the time to acknowledge or resolve when it is one of those."""
    severity = change.severity
    fields: dict[str, object] = {
        "title": change.title,
        "device_id": change.device_id or "",
        "target_acknowledge_s": severity.response_due_s,
        "target_resolve_s": severity.resolve_due_s,
    }
    if change.opened_at is not None:
        if change.kind is ChangeKind.ACKNOWLEDGED and change.acknowledged_at is not None:
            # From when the clock last started: a reopened ticket or a graver class is answered anew.
            started = change.ack_from or change.opened_at
            fields["seconds_to_acknowledge"] = (change.acknowledged_at - started).total_seconds()
        if change.kind is ChangeKind.RESOLVED and change.resolved_at is not None:
            fields["seconds_to_resolve"] = (change.resolved_at - change.opened_at).total_seconds()
    ts = to_ms(at)
    line = (
        f"tickets,site={change.site},class={severity.value},source={change.source or 'unknown'},"
        f"device_type={change.device_type or 'none'},change={change.kind.value},ticket={change.ticket_id} "
        f"{format_fields(fields)},ticket_id={change.ticket_id}i {ts}"
    )
    return line, ts


class ChangeRecorder:
    """Ticket listener: each change becomes a point, at the time it is told, handed to the sink."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink

    def __call__(self, change: TicketChange) -> None:
        """Record one change."""
        self.sink([ticket_point(change, datetime.now(UTC))])


def site_status_point(site: str, counts: Mapping[str, float], ts: int) -> Point:
    """One site's counts at `ts`."""
    return f"site_status,site={site} {format_fields(dict(counts))} {ts}", ts


def service_status_point(counters: Mapping[str, float], ts: int) -> Point:
    """The pipeline's counters at `ts`."""
    return f"service_status {format_fields(dict(counters))} {ts}", ts


def count_by_class(severities: Iterable[str]) -> dict[str, float]:
    """alarms_routine, alarms_major and alarms_emergency from the classes of active alarms."""
    counts = {f"alarms_{s.value}": 0.0 for s in Severity}
    for severity in severities:
        counts[f"alarms_{severity}"] += 1
    return counts


class StatusWriter:
    """Every few seconds, each site's counts and the pipeline's counters, as points."""

    def __init__(
        self,
        devices: DeviceDirectory,
        tickets: TicketService,
        readings: Callable[[], dict[str, int]],
        counters: Callable[[], dict[str, float]],
        sink: Sink,
        sites: frozenset[str] | None = None,
    ) -> None:
        self.devices = devices
        self.tickets = tickets
        self.sites = sites  # a worker of several writes its own sites' counts; None: every site
        self.readings = readings
        self.counters = counters
        self.sink = sink
        self._last_ms: int | None = None

    def write(self) -> None:
        """Gather the counts now and hand them to the sink."""
        ts = now_ms()
        minutes = (ts - self._last_ms) / 60_000 if self._last_ms else None
        self._last_ms = ts
        readings = self.readings()
        alarms: dict[str, list[str]] = {}
        offline: set[tuple[str, str]] = set()
        # Columns only, not whole rows: this runs every few seconds over the whole fleet.
        for site, device_id, rule, severity in self.tickets.active_alarm_classes():
            alarms.setdefault(site, []).append(severity)
            if rule == "offline":
                offline.add((site, device_id))
        open_tickets = self.tickets.open_counts()
        sites: dict[str, dict[str, float]] = {}
        for site, device_id, seen in self.devices.presence():
            counts = sites.setdefault(site, {"devices": 0.0, "devices_online": 0.0, "devices_offline": 0.0})
            counts["devices"] += 1
            state = online(seen, (site, device_id) in offline)
            if state is not None:
                counts["devices_online" if state else "devices_offline"] += 1
        points = []
        for site in sorted(sites.keys() | alarms.keys() | readings.keys() | open_tickets.keys()):
            if self.sites is not None and site not in self.sites:
                continue
            counts = sites.get(site, {"devices": 0.0, "devices_online": 0.0, "devices_offline": 0.0})
            counts.update(count_by_class(alarms.get(site, ())))
            counts["tickets_open"] = float(open_tickets.get(site, 0))
            counts["readings"] = float(readings.get(site, 0))
            if minutes:
                counts["readings_per_minute"] = counts["readings"] / minutes
            points.append(site_status_point(site, counts, ts))
        points.append(service_status_point(self.counters(), ts))
        self.sink(points)
