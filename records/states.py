"""The states the records keep, as enums: a ticket's status, source, cause class; a round's, a visit's status;
a notification's delivery.

Pure vocabulary, no database: the lifecycle and the patrol evaluation reason with the same names
the columns hold.
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    """Where a ticket stands."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    CLOSED = "closed"


class Source(StrEnum):
    """Where a ticket came from (manual: the four sources of work)."""

    ALARM = "alarm"
    OCCUPANT = "occupant"
    PATROL = "patrol"
    MAINTENANCE = "maintenance"


class CauseClass(StrEnum):
    """What kind of problem a resolved ticket was (§9.2.1: process, staff, equipment; and from outside)."""

    PROCESS = "process"
    STAFF = "staff"
    EQUIPMENT = "equipment"
    EXTERNAL = "external"


class VisitStatus(StrEnum):
    """What became of one checkpoint of a round."""

    PENDING = "pending"
    ON_TIME = "on_time"
    EARLY = "early"
    LATE = "late"
    MISSED = "missed"
    WRONG_ORDER = "wrong_order"


class RoundStatus(StrEnum):
    """Where a round stands."""

    SCHEDULED = "scheduled"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    INCOMPLETE = "incomplete"


class Delivery(StrEnum):
    """Where a notification in the outbox stands."""

    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"  # given up after the outbox's time limit
