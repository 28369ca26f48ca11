"""The records' tables: devices, alarms, tickets, their audit trail, users, API tokens and patrols."""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any, ClassVar, TypeVar

from sqlalchemy import JSON, Date, DateTime, ForeignKey, Index, Integer, String, Text, TypeDecorator, text
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from ground.severity import Severity
from records.states import CauseClass, Delivery, RoundStatus, Source, Status, VisitStatus

E = TypeVar("E", bound=StrEnum)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every database (SQLite keeps no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: give times in UTC with tzinfo")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class EnumText(TypeDecorator[E]):
    """An enum kept as its text (no database enum type, so adding a member needs no migration)."""

    impl = String(16)
    cache_ok = True

    def __init__(self, enum: type[E]) -> None:
        super().__init__()
        self.enum = enum

    def process_bind_param(self, value: E | str | None, dialect: Dialect) -> str | None:
        return None if value is None else self.enum(value).value

    def process_result_value(self, value: str | None, dialect: Dialect) -> E | None:
        return None if value is None else self.enum(value)


class Base(DeclarativeBase):
    """Declarative base of the records."""

    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime(), dict[str, Any]: JSON()}


class Device(Base):
    """A device: registered ahead (name, location, interval) and/or seen on its first message."""

    __tablename__ = "devices"
    __table_args__ = (Index("devices_site_device", "site", "device_id", unique=True),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site: Mapped[str] = mapped_column(String(64))
    device_id: Mapped[str] = mapped_column(String(64))
    device_type: Mapped[str] = mapped_column(String(64))
    name: Mapped[str | None] = mapped_column(String(200))
    building: Mapped[str | None] = mapped_column(String(100))
    floor: Mapped[str | None] = mapped_column(String(50))
    location: Mapped[str | None] = mapped_column(String(200))
    interval_s: Mapped[int | None] = mapped_column(Integer)
    # The gateway it reports through, if any: that gateway's outage is the cause of its silence.
    gateway: Mapped[str | None] = mapped_column(String(64))
    registered: Mapped[bool] = mapped_column(default=False)
    first_seen: Mapped[datetime | None]
    last_seen: Mapped[datetime | None]
    latest: Mapped[dict[str, Any]] = mapped_column(default=dict)

    def label(self) -> str:
        """How people name it: "Elevator 3, Building B" or the device id."""
        name = self.name or self.device_id
        return f"{name}, {self.building}" if self.building else name


class Ticket(Base):
    """A maintenance ticket, from an alarm, an occupant, a patrol or a maintenance plan."""

    __tablename__ = "tickets"

    id: Mapped[int] = mapped_column(primary_key=True)
    site: Mapped[str] = mapped_column(String(64), index=True)
    device_id: Mapped[str | None] = mapped_column(String(64), index=True)
    device_type: Mapped[str | None] = mapped_column(String(64))
    rule: Mapped[str | None] = mapped_column(String(64))
    severity: Mapped[Severity] = mapped_column("class", EnumText(Severity), index=True)
    status: Mapped[Status] = mapped_column(EnumText(Status), index=True)
    source: Mapped[Source] = mapped_column(EnumText(Source), index=True)
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str | None] = mapped_column(Text)
    location: Mapped[str | None] = mapped_column(String(300))
    reporter: Mapped[str | None] = mapped_column(String(200))
    assignee: Mapped[str | None] = mapped_column(String(100))
    opened_at: Mapped[datetime]
    acknowledged_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    response_due: Mapped[datetime]
    occurrences: Mapped[int] = mapped_column(default=1)
    last_occurrence_at: Mapped[datetime]
    # §4.2.3 steps for major and emergency faults.
    emergency_plan_started_at: Mapped[datetime | None]
    leadership_informed_at: Mapped[datetime | None]
    temporary_measures: Mapped[str | None] = mapped_column(Text)
    # §4.2.4 record of the fault, required to resolve.
    cause: Mapped[str | None] = mapped_column(Text)
    measures: Mapped[str | None] = mapped_column(Text)
    result: Mapped[str | None] = mapped_column(Text)
    # §3.1.2 follow-up with the occupant, required to close an occupant ticket.
    followup: Mapped[str | None] = mapped_column(Text)
    # §9.1.1 the occupant's satisfaction asked at that follow-up, 1 (poor) to 5 (very satisfied).
    satisfaction: Mapped[int | None] = mapped_column(Integer)
    satisfaction_comment: Mapped[str | None] = mapped_column(Text)
    # §9.2.1 what kind of problem it was, recorded on resolve (required for major and emergency).
    cause_class: Mapped[CauseClass | None] = mapped_column(EnumText(CauseClass))
    # Escalation of an unacknowledged ticket: how often notified, and to which level.
    notified_count: Mapped[int] = mapped_column(default=0)
    escalation_level: Mapped[int] = mapped_column(default=0)
    # "site/device_id/rule" while the ticket is not closed: the database refuses a second open
    # ticket for one alarm, whatever races or redeliveries happen.
    alarm_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    patrol_round_id: Mapped[int | None] = mapped_column(Integer)
    # When the acknowledge clock last started: a reopening, or a graver class to acknowledge
    # again; None: at the opening. Times to acknowledge count from it.
    ack_from: Mapped[datetime | None]
    # The resolve target: the project's own per class (ground/severity.py), from the response clock.
    resolve_due: Mapped[datetime]
    # When the ticket was marked past its response due or its resolve target, each once an opening.
    response_overdue_at: Mapped[datetime | None]
    resolve_overdue_at: Mapped[datetime | None]

    audit: Mapped[list[AuditEntry]] = relationship(
        back_populates="ticket", order_by="AuditEntry.id", cascade="all, delete-orphan"
    )


class AuditEntry(Base):
    """Who changed what on a ticket, and when."""

    __tablename__ = "audit"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(50))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)

    ticket: Mapped[Ticket] = relationship(back_populates="audit")


class Alarm(Base):
    """A rule's alarm on a device: active or cleared, acknowledged or not, and how often it recurred."""

    __tablename__ = "alarms"
    __table_args__ = (
        # At most one active alarm per (device, rule). On PostgreSQL the index has the same WHERE
        # (migration 0001); named here, it would load SQLAlchemy's PostgreSQL dialect (2 MB) into
        # every service, SQLite's too.
        Index("alarms_one_active", "site", "device_id", "rule", unique=True, sqlite_where=text("active")),
        # A ticket's alarms, and whether any is still active: an outage's children by the thousand.
        Index("alarms_ticket_active", "ticket_id", "active"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site: Mapped[str] = mapped_column(String(64))
    device_id: Mapped[str] = mapped_column(String(64))
    device_type: Mapped[str] = mapped_column(String(64))
    rule: Mapped[str] = mapped_column(String(64))
    severity: Mapped[Severity] = mapped_column("class", EnumText(Severity))
    title: Mapped[str] = mapped_column(String(300))
    active: Mapped[bool] = mapped_column(index=True)
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(String(100))
    raised_at: Mapped[datetime]
    cleared_at: Mapped[datetime | None]
    last_seen: Mapped[datetime]
    count: Mapped[int] = mapped_column(default=1)
    # Raised inside a maintenance window: recorded, and no ticket opened while the window lasts.
    held: Mapped[bool] = mapped_column(default=False)
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # The device's own ticket, or the outage incident it is a child of.
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))


class User(Base):
    """A staff account: a name, an argon2 password hash, a role, and the sites it is limited to."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    # Empty: every site.
    sites: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime]
    password_changed_at: Mapped[datetime]
    disabled_at: Mapped[datetime | None]


class ApiToken(Base):
    """A bearer token (kept as its SHA-256) with a role; refused once revoked or past its expiry.

    A token with a `user_id` was given at a log-in: it acts with that user's current role and
    sites, and is refused once the user is disabled.
    """

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)


class EngineState(Base):
    """The rules engine's snapshot (pending durations, active alarms, windows), for a restart."""

    __tablename__ = "engine_state"

    id: Mapped[int] = mapped_column(primary_key=True)
    saved_at: Mapped[datetime]
    state: Mapped[dict[str, Any]] = mapped_column(default=dict)


class EngineStatePart(Base):
    """A part of an engine's snapshot: the state of up to a thousand of its devices, as a JSON array.

    Its head (`EngineState.state`) says how many parts there are; both are written in one
    transaction, and a part is written again only when it changed.
    """

    __tablename__ = "engine_state_parts"

    state_id: Mapped[int] = mapped_column(primary_key=True)
    part: Mapped[int] = mapped_column(primary_key=True)
    devices: Mapped[list[Any]] = mapped_column(JSON)


class PatrolCheckpoint(Base):
    """A place on a patrol with its electronic tag (巡更點)."""

    __tablename__ = "patrol_checkpoints"
    __table_args__ = (Index("patrol_checkpoints_site_tag", "site", "tag", unique=True),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    site: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(200))
    tag: Mapped[str] = mapped_column(String(128))
    location: Mapped[str | None] = mapped_column(String(300))
    # Where it is, as devices say it: an alarm on the same floor of the same building is verified here.
    building: Mapped[str | None] = mapped_column(String(100))
    floor: Mapped[str | None] = mapped_column(String(50))


class PatrolRoute(Base):
    """Checkpoints in order, each due some minutes after the round starts."""

    __tablename__ = "patrol_routes"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    site: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(200))
    # [{"checkpoint": id, "after_min": minutes after the start}], in walking order
    checkpoints: Mapped[list[dict[str, Any]]] = mapped_column(JSON)


class PatrolPlan(Base):
    """When a route is walked: weekdays and start times (site time) between two dates, by whom."""

    __tablename__ = "patrol_plans"

    id: Mapped[int] = mapped_column(primary_key=True)
    route_id: Mapped[str] = mapped_column(ForeignKey("patrol_routes.id"), index=True)
    weekdays: Mapped[list[int]] = mapped_column(JSON)  # ISO: 1 Monday … 7 Sunday
    start_times: Mapped[list[str]] = mapped_column(JSON)  # "HH:MM"
    guards: Mapped[list[str]] = mapped_column(JSON)
    valid_from: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime]


class PatrolRound(Base):
    """One walk of a route: planned or ad hoc, and how it went."""

    __tablename__ = "patrol_rounds"
    __table_args__ = (
        Index("patrol_rounds_plan_start", "plan_id", "start", unique=True),
        Index("patrol_rounds_site_start", "site", "start"),
        Index("patrol_rounds_site_window_end", "site", "window_end"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site: Mapped[str] = mapped_column(String(64))
    route_id: Mapped[str] = mapped_column(ForeignKey("patrol_routes.id"), index=True)
    plan_id: Mapped[int | None] = mapped_column(ForeignKey("patrol_plans.id"))
    guard: Mapped[str] = mapped_column(String(100), index=True)
    guards: Mapped[list[str]] = mapped_column(JSON)
    start: Mapped[datetime]
    window_end: Mapped[datetime]  # scans after this (device time) belong to no checkpoint of it
    status: Mapped[RoundStatus] = mapped_column(EnumText(RoundStatus), index=True)
    started_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    next_deadline: Mapped[datetime | None] = mapped_column(index=True)
    start_missed: Mapped[bool] = mapped_column(default=False)  # the not-started alarm was raised
    created_at: Mapped[datetime]

    visits: Mapped[list[PatrolVisit]] = relationship(
        back_populates="round", order_by="PatrolVisit.position", cascade="all, delete-orphan"
    )
    verify_stops: Mapped[list[PatrolVerifyStop]] = relationship(
        back_populates="round", order_by="PatrolVerifyStop.id", lazy="selectin"
    )


class PatrolVisit(Base):
    """A checkpoint of a round: when it is due and what its scan made of it."""

    __tablename__ = "patrol_visits"

    id: Mapped[int] = mapped_column(primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("patrol_rounds.id"), index=True)
    position: Mapped[int]
    checkpoint_id: Mapped[str] = mapped_column(String(64))
    due: Mapped[datetime]
    status: Mapped[VisitStatus] = mapped_column(EnumText(VisitStatus))
    scanned_at: Mapped[datetime | None]
    scanned_by: Mapped[str | None] = mapped_column(String(100))
    offset_s: Mapped[float | None]

    round: Mapped[PatrolRound] = relationship(back_populates="visits")


class PatrolVerifyStop(Base):
    """A stop added to a round in progress to look at an alarm's place; extra: never late or missed."""

    __tablename__ = "patrol_verify_stops"
    __table_args__ = (
        Index("patrol_verify_stops_once", "round_id", "ticket_id", unique=True),
        Index("patrol_verify_stops_site_checkpoint", "site", "checkpoint_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("patrol_rounds.id"))
    site: Mapped[str] = mapped_column(String(64))
    checkpoint_id: Mapped[str] = mapped_column(String(64))
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    device_id: Mapped[str | None] = mapped_column(String(64))
    added_at: Mapped[datetime]
    scanned_at: Mapped[datetime | None]  # the reader's time of the scan that served it
    scanned_by: Mapped[str | None] = mapped_column(String(100))
    finding: Mapped[str | None] = mapped_column(Text)
    # The finding's row in patrol_scans, so a finding delivered again is not filed twice.
    finding_scan_id: Mapped[int | None] = mapped_column(Integer)

    round: Mapped[PatrolRound] = relationship(back_populates="verify_stops")


class PatrolScan(Base):
    """Every scan a reader sent, as sent (append-only), and what became of it."""

    __tablename__ = "patrol_scans"
    __table_args__ = (
        Index("patrol_scans_once", "site", "reader", "ts", "tag", "code", unique=True),
        Index("patrol_scans_checkpoint_ts", "site", "checkpoint_id", "ts"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site: Mapped[str] = mapped_column(String(64))
    reader: Mapped[str] = mapped_column(String(64))
    code: Mapped[str] = mapped_column(String(32))  # PATROL_SCAN or PATROL_FINDING
    tag: Mapped[str] = mapped_column(String(128))
    guard: Mapped[str | None] = mapped_column(String(100))
    ts: Mapped[datetime]  # the reader's clock: when the tag was read
    received_at: Mapped[datetime]
    checkpoint_id: Mapped[str | None] = mapped_column(String(64))
    round_id: Mapped[int | None] = mapped_column(Integer, index=True)
    outcome: Mapped[str] = mapped_column(String(32))


class Contractor(Base):
    """A licensed contractor (§4.1.4): who may service elevators or fire equipment, until when."""

    __tablename__ = "contractors"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    licence_number: Mapped[str] = mapped_column(String(100))
    licence_expires: Mapped[date] = mapped_column(Date)
    equipment_types: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime]
    # When the ticket for a licence expiring soon was opened, so it opens once per expiry date.
    expiry_ticket_for: Mapped[date | None] = mapped_column(Date)


class MaintenancePlan(Base):
    """A maintenance plan (§4.1.1): what it covers, its checklist, who does it, and when it falls due."""

    __tablename__ = "maintenance_plans"

    id: Mapped[int] = mapped_column(primary_key=True)
    site: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(200))
    # What it covers: these devices, or every device of a type on the site, or of a building.
    device_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    device_type: Mapped[str | None] = mapped_column(String(64))
    building: Mapped[str | None] = mapped_column(String(100))
    items: Mapped[list[str]] = mapped_column(JSON)
    # By the calendar: an ISO 8601 period from a first due date, opened `lead_days` ahead.
    every: Mapped[str | None] = mapped_column(String(16))
    first_due: Mapped[datetime | None]
    lead_days: Mapped[int] = mapped_column(default=0)
    # By use: every N of a counter metric, every H hours of a boolean metric being true.
    counter_metric: Mapped[str | None] = mapped_column(String(64))
    counter_every: Mapped[float | None]
    running_metric: Mapped[str | None] = mapped_column(String(64))
    running_every_h: Mapped[float | None]
    responsible: Mapped[str | None] = mapped_column(String(100))
    contractor_id: Mapped[str | None] = mapped_column(ForeignKey("contractors.id"))
    created_at: Mapped[datetime]


class MaintenanceUse(Base):
    """How much a device has been used since its plan's last work order (counter or running hours)."""

    __tablename__ = "maintenance_use"

    plan_id: Mapped[int] = mapped_column(ForeignKey("maintenance_plans.id"), primary_key=True)
    device_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # The counter's value when the last work order opened (or when it was first seen).
    counter_base: Mapped[float | None]
    # Seconds the running metric has been true since the last work order; the last reading seen.
    running_s: Mapped[float] = mapped_column(default=0.0)
    last_ts: Mapped[datetime | None]
    last_running: Mapped[bool | None]


class WorkOrder(Base):
    """A maintenance job on one device: its ticket (source `maintenance`), plan, due date and checklist."""

    __tablename__ = "work_orders"
    __table_args__ = (
        # Never twice for the same plan, device and due date: through restarts and replays.
        Index("work_orders_once", "plan_id", "device_id", "due_at", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), unique=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("maintenance_plans.id"), index=True)
    site: Mapped[str] = mapped_column(String(64), index=True)
    device_id: Mapped[str] = mapped_column(String(64))
    device_type: Mapped[str | None] = mapped_column(String(64))
    due_at: Mapped[datetime]
    # calendar, counter or running_hours
    trigger: Mapped[str] = mapped_column(String(16))
    # [{"item": text, "done": true | false | null, "note": text | null}]
    checklist: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    done_at: Mapped[datetime | None]
    done_by: Mapped[str | None] = mapped_column(String(100))


class MaintenanceWindow(Base):
    """A time when a device's (or a building's) alarms are held while people work on it."""

    __tablename__ = "maintenance_windows"

    id: Mapped[int] = mapped_column(primary_key=True)
    site: Mapped[str] = mapped_column(String(64), index=True)
    device_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    building: Mapped[str | None] = mapped_column(String(100))
    start: Mapped[datetime]
    end: Mapped[datetime] = mapped_column(index=True)
    reason: Mapped[str] = mapped_column(String(300))
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime]
    # A window a started work order opened: it ends when the order is resolved.
    work_order_id: Mapped[int | None] = mapped_column(ForeignKey("work_orders.id"))
    # Set once the end was dealt with: conditions still holding opened their tickets.
    closed_at: Mapped[datetime | None]


class Notification(Base):
    """A notification to one recipient: written with its ticket's change, kept until sent or given up."""

    __tablename__ = "notifications"
    __table_args__ = (
        # What the courier claims: the pending ones that are due.
        Index("notifications_due", "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    # A receiver drops a repeat by this (a delivery that arrived but whose answer was lost).
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    reason: Mapped[str] = mapped_column(String(32))
    recipient: Mapped[str] = mapped_column(String(200))
    # duty_engineer, duty_manager, leadership, or webhook (FACILITY_WEBHOOK_URL, the catch-all)
    role: Mapped[str] = mapped_column(String(32))
    url: Mapped[str] = mapped_column(String(2000))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[Delivery] = mapped_column(EnumText(Delivery))
    created_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime]
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None]
    given_up_at: Mapped[datetime | None]
