"""Request and response shapes of the API: separate models for what comes in and what goes out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from accounts.roles import Role
from ground.contract import DEVICE_TYPES
from ground.severity import Severity
from records.devices import online
from records.models import Alarm, ApiToken, AuditEntry, Device, Ticket
from records.states import CauseClass
from tickets.timing import Due, overdue_for

_SITE_OR_DEVICE = r"^[a-z0-9][a-z0-9_-]{0,63}$"
SITE_OR_DEVICE = _SITE_OR_DEVICE
# Ids are 32-bit in PostgreSQL; a larger one cannot exist, so it is refused before any query.
MAX_ID = 2**31 - 1
TOKEN_LIFETIME_MAX_S = 10 * 366 * 86_400


class Input(BaseModel):
    """A request body: unknown fields, NUL characters (PostgreSQL cannot keep them) and blank text refused."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @field_validator("*", mode="after")
    @classmethod
    def _text(cls, value: object) -> object:
        for text in value if isinstance(value, list) else [value]:
            if not isinstance(text, str):
                continue
            if "\x00" in text:
                raise ValueError("must not contain NUL characters")
            # Whitespace alone says nothing, and would pass for a title or a record of work done.
            if not text.strip():
                raise ValueError("must not be blank")
        return value


class AuditPublic(BaseModel):
    """One change to a ticket."""

    at: datetime
    actor: str
    action: str
    detail: dict[str, Any]


class TicketPublic(BaseModel):
    """A ticket as the API shows it."""

    model_config = ConfigDict(populate_by_name=True)

    id: int
    site: str
    device_id: str | None
    device_type: str | None
    rule: str | None
    severity: Severity = Field(serialization_alias="class")
    status: str
    source: str
    title: str
    description: str | None
    location: str | None
    reporter: str | None
    assignee: str | None
    opened_at: datetime
    acknowledged_at: datetime | None
    started_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    response_due: datetime
    occurrences: int
    last_occurrence_at: datetime
    emergency_plan_started_at: datetime | None
    leadership_informed_at: datetime | None
    temporary_measures: str | None
    cause: str | None
    measures: str | None
    result: str | None
    followup: str | None
    cause_class: CauseClass | None = None
    satisfaction: int | None = None
    satisfaction_comment: str | None = None
    escalation_level: int
    patrol_round_id: int | None
    ack_from: datetime | None = Field(
        description="when the acknowledge clock last started (a reopening, a graver class); null: opened_at"
    )
    resolve_due: datetime = Field(
        description="the resolve target: the project's own per class, not the manual's"
    )
    overdue: bool = Field(description="open past its response due, or unresolved past its resolve target")
    overdue_for: list[Due] = Field(description="which: response, resolve, or both")
    audit: list[AuditPublic] | None = None


_COMPUTED = ("audit", "severity", "overdue", "overdue_for")


def ticket_public(t: Ticket, with_audit: bool = False) -> TicketPublic:
    """The public view of a ticket."""
    fields = {name: getattr(t, name) for name in TicketPublic.model_fields if name not in _COMPUTED}
    audit = audit_public(t.audit) if with_audit else None
    late = overdue_for(t, datetime.now(UTC))
    return TicketPublic(
        severity=Severity(t.severity), audit=audit, overdue=bool(late), overdue_for=late, **fields
    )


class ReportPublic(TicketPublic):
    """The ticket an occupant's report is on: a new one (201), or the open one it joined (200)."""

    joined: bool = Field(description="true: the report joined a ticket already open, as an occurrence")


def audit_public(entries: list[AuditEntry]) -> list[AuditPublic]:
    """The public view of an audit trail."""
    return [AuditPublic(at=a.at, actor=a.actor, action=a.action, detail=a.detail) for a in entries]


class TicketCreate(Input):
    """An occupant's fault report (§4.2.1), or another ticket opened by hand."""

    site: str = Field(pattern=_SITE_OR_DEVICE)
    title: str | None = Field(
        default=None, min_length=1, max_length=300, description="default: the description's start"
    )
    description: str | None = Field(default=None, min_length=1, max_length=5000)
    severity: Severity = Field(default=Severity.ROUTINE, alias="class")
    device_id: str | None = Field(default=None, pattern=_SITE_OR_DEVICE)
    location: str | None = Field(default=None, min_length=1, max_length=300)
    reporter: str | None = Field(
        default=None, min_length=1, max_length=200, description="the occupant: name, unit, phone"
    )
    contact: str | None = Field(
        default=None, min_length=1, max_length=200, description="how to reach the occupant, if not above"
    )
    source: str = Field(default="occupant", pattern="^(occupant|maintenance)$")

    @model_validator(mode="after")
    def _title_or_description(self) -> TicketCreate:
        if not self.title:
            if not self.description:
                raise ValueError("give a title or a description")
            self.title = self.description.strip().splitlines()[0][:120]
        return self


class ActionBody(Input):
    """What may come with an action; which fields an action needs is in the README."""

    assignee: str | None = Field(default=None, min_length=1, max_length=100)
    note: str | None = Field(default=None, min_length=1, max_length=5000)
    cause: str | None = Field(default=None, min_length=1, max_length=5000)
    measures: str | None = Field(default=None, min_length=1, max_length=5000)
    result: str | None = Field(default=None, min_length=1, max_length=5000)
    emergency_plan_started: bool | None = None
    leadership_informed: bool | None = None
    temporary_measures: str | None = Field(default=None, min_length=1, max_length=5000)
    followup: str | None = Field(default=None, min_length=1, max_length=5000)
    cause_class: CauseClass | None = Field(
        default=None, description="on resolve (§9.2.1): required for major and emergency faults"
    )
    satisfaction: int | None = Field(
        default=None,
        ge=1,
        le=5,
        description="on closing an occupant's ticket (§9.1.1): 1 poor … 5 very satisfied",
    )
    satisfaction_comment: str | None = Field(default=None, min_length=1, max_length=5000)

    @model_validator(mode="after")
    def _comment_with_score(self) -> ActionBody:
        if self.satisfaction_comment is not None and self.satisfaction is None:
            raise ValueError("satisfaction_comment comes with a satisfaction score")
        return self


class AlarmPublic(BaseModel):
    """An alarm as the API shows it."""

    id: int
    site: str
    device_id: str
    device_type: str
    rule: str
    severity: Severity = Field(serialization_alias="class")
    title: str
    active: bool
    acknowledged: bool
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    raised_at: datetime
    cleared_at: datetime | None
    last_seen: datetime
    count: int
    detail: dict[str, Any]
    ticket_id: int | None
    held: bool = Field(description="raised inside a maintenance window: recorded, no ticket while it lasts")


def alarm_public(a: Alarm) -> AlarmPublic:
    """The public view of an alarm."""
    return AlarmPublic(
        id=a.id,
        site=a.site,
        device_id=a.device_id,
        device_type=a.device_type,
        rule=a.rule,
        severity=Severity(a.severity),
        title=a.title,
        active=a.active,
        acknowledged=a.acknowledged_at is not None,
        acknowledged_at=a.acknowledged_at,
        acknowledged_by=a.acknowledged_by,
        raised_at=a.raised_at,
        cleared_at=a.cleared_at,
        last_seen=a.last_seen,
        count=a.count,
        detail=a.detail,
        ticket_id=a.ticket_id,
        held=a.held,
    )


class DeviceCreate(Input):
    """A device registered ahead of its first message."""

    site: str = Field(pattern=_SITE_OR_DEVICE)
    device_id: str = Field(pattern=_SITE_OR_DEVICE)
    # Checked against the contract on registering, which names the field; the enum documents it.
    device_type: str = Field(json_schema_extra={"enum": list(sorted(DEVICE_TYPES))})
    name: str | None = Field(default=None, min_length=1, max_length=200)
    building: str | None = Field(default=None, min_length=1, max_length=100)
    floor: str | None = Field(default=None, min_length=1, max_length=50)
    location: str | None = Field(default=None, min_length=1, max_length=200)
    interval_s: int | None = Field(default=None, ge=1, le=86_400)
    # The gateway it reports through: that gateway's outage explains its silence (one incident).
    gateway: str | None = Field(default=None, pattern=_SITE_OR_DEVICE)


class DevicePublic(BaseModel):
    """A device with its last state."""

    site: str
    device_id: str
    device_type: str
    name: str | None
    building: str | None
    floor: str | None
    location: str | None
    interval_s: int | None
    gateway: str | None
    registered: bool
    first_seen: datetime | None
    last_seen: datetime | None
    online: bool | None
    latest: dict[str, Any]
    open_alarms: list[str]


def device_public(d: Device, open_alarms: list[str]) -> DevicePublic:
    """The public view of a device; online unless the offline rule holds, unknown if never heard."""
    state = online(d.last_seen is not None, "offline" in open_alarms)
    return DevicePublic(
        site=d.site,
        device_id=d.device_id,
        device_type=d.device_type,
        name=d.name,
        building=d.building,
        floor=d.floor,
        location=d.location,
        interval_s=d.interval_s,
        gateway=d.gateway,
        registered=d.registered,
        first_seen=d.first_seen,
        last_seen=d.last_seen,
        online=state,
        latest=d.latest,
        open_alarms=open_alarms,
    )


class HistoryPoint(BaseModel):
    """One reading (or bucket) of a metric."""

    time: datetime
    value: float | bool | str | None


class TokenCreate(Input):
    """A new API token for a person or a system; it never expires unless given an expiry."""

    name: str = Field(min_length=1, max_length=100)
    role: Role
    expires_in_s: int | None = Field(
        default=None, ge=1, le=TOKEN_LIFETIME_MAX_S, description="seconds from now until it expires"
    )
    expires_at: datetime | None = Field(default=None, description="valid until then (with its offset)")

    @field_validator("expires_at")
    @classmethod
    def _expiry(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("give the time with its offset (…Z or …+08:00)")
        if value <= datetime.now(UTC):
            raise ValueError("must be in the future")
        if value - datetime.now(UTC) > timedelta(seconds=TOKEN_LIFETIME_MAX_S):
            raise ValueError("a token expires within ten years")
        return value.astimezone(UTC)

    @model_validator(mode="after")
    def _one_expiry(self) -> TokenCreate:
        if self.expires_in_s is not None and self.expires_at is not None:
            raise ValueError("give expires_in_s or expires_at, not both")
        return self

    def expiry(self) -> datetime | None:
        """When the token expires, or None."""
        if self.expires_in_s is not None:
            return datetime.now(UTC) + timedelta(seconds=self.expires_in_s)
        return self.expires_at


class TokenPublic(BaseModel):
    """An issued token as listed: never the token itself, which is kept only as its hash."""

    id: int
    name: str
    role: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


class TokenIssued(TokenPublic):
    """A token just issued, shown once."""

    token: str


def token_public(t: ApiToken) -> TokenPublic:
    """The public view of an issued token."""
    return TokenPublic(
        id=t.id,
        name=t.name,
        role=t.role,
        created_at=t.created_at,
        expires_at=t.expires_at,
        revoked_at=t.revoked_at,
    )
