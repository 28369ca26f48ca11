"""The records' tables: devices, alarms, tickets, their audit trail, and API tokens."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, Text, TypeDecorator, text
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


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
    severity: Mapped[str] = mapped_column("class", String(16), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    source: Mapped[str] = mapped_column(String(16), index=True)
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
    # Escalation of an unacknowledged ticket: how often notified, and to which level.
    notified_count: Mapped[int] = mapped_column(default=0)
    escalation_level: Mapped[int] = mapped_column(default=0)
    # "site/device_id/rule" while the ticket is not closed: the database refuses a second open
    # ticket for one alarm, whatever races or redeliveries happen.
    alarm_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    patrol_round_id: Mapped[int | None] = mapped_column(Integer)

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
        # At most one active alarm per (device, rule).
        Index(
            "alarms_one_active",
            "site",
            "device_id",
            "rule",
            unique=True,
            sqlite_where=text("active"),
            postgresql_where=text("active"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site: Mapped[str] = mapped_column(String(64))
    device_id: Mapped[str] = mapped_column(String(64))
    device_type: Mapped[str] = mapped_column(String(64))
    rule: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column("class", String(16))
    title: Mapped[str] = mapped_column(String(300))
    active: Mapped[bool] = mapped_column(index=True)
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(String(100))
    raised_at: Mapped[datetime]
    cleared_at: Mapped[datetime | None]
    last_seen: Mapped[datetime]
    count: Mapped[int] = mapped_column(default=1)
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))


class ApiToken(Base):
    """A bearer token (kept as its SHA-256) with a role."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class EngineState(Base):
    """The rules engine's snapshot (pending durations, active alarms, windows), for a restart."""

    __tablename__ = "engine_state"

    id: Mapped[int] = mapped_column(primary_key=True)
    saved_at: Mapped[datetime]
    state: Mapped[dict[str, Any]] = mapped_column(default=dict)
