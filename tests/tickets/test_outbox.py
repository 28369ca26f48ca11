"""The outbox: notifications written with their ticket's change, sent by the courier until they arrive.

Each test runs on SQLite and on PostgreSQL, against a real HTTP receiver on loopback; the
courier's time is a fake clock, so backoff and giving up are stepped, not waited for.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from ground.events import AlarmEvent
from ground.severity import Severity
from records.db import Database
from records.models import Notification, Ticket
from records.states import Delivery
from tests.conftest import wait_until
from tests.webhook_receiver import Receiver
from tickets.courier import Courier, Timing
from tickets.lifecycle import Action
from tickets.outbox import Outbox, backoff_s
from tickets.recipients import Duty, Recipient, RecipientBook
from tickets.service import ActionFields, NewTicket, TicketService

T0 = 1_795_749_124_000


class Clock:
    """The courier's time, moved on by the test."""

    def __init__(self) -> None:
        self.now = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time on."""
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook receiver that accepts everything (a test sets `fail_first` to make it fail first)."""
    hook = Receiver()
    yield hook
    hook.close()


def _book(receiver: Receiver) -> RecipientBook:
    """Site s1's engineer and manager, and leadership for every site, each at a path of their own."""
    return RecipientBook(
        {
            "s1": {
                Duty.ENGINEER: (Recipient("Engineer", receiver.url("eng"), "lee"),),
                Duty.MANAGER: (Recipient("Manager", receiver.url("mgr")),),
            },
            "*": {Duty.LEADERSHIP: (Recipient("Director", receiver.url("dir")),)},
        }
    )


@pytest.fixture
def clock() -> Clock:
    """The courier's fake clock."""
    return Clock()


@pytest.fixture
def outbox(db: Database, receiver: Receiver, clock: Clock) -> Outbox:
    """An outbox on the records database whose recipients are at the receiver."""
    return Outbox(db, lambda: _book(receiver), clock=clock)


@pytest.fixture
def tickets(db: Database, outbox: Outbox) -> TicketService:
    """A ticket service that writes notifications into the outbox with each change."""
    return TicketService(db, in_transaction=[outbox.write])


def _told(db: Database, ticket_id: int) -> list[tuple[str, str]]:
    """(reason, role) of each notification of a ticket, in order."""
    with db.read() as s:
        rows = s.scalars(
            select(Notification).where(Notification.ticket_id == ticket_id).order_by(Notification.id)
        )
        return [(n.reason, n.role) for n in rows]


def _open(tickets: TicketService, severity: Severity, site: str = "s1") -> int:
    return tickets.open_ticket(NewTicket(site=site, title=f"{severity} fault", severity=severity), "desk").id


def test_each_class_tells_its_part_of_the_chain_and_escalation_moves_up(
    db: Database, tickets: TicketService
) -> None:
    routine, major, emergency = (_open(tickets, sev) for sev in Severity)
    assert _told(db, routine) == [("opened", "duty_engineer")]
    assert _told(db, major) == [("opened", "duty_engineer"), ("opened", "duty_manager")]
    assert _told(db, emergency) == [
        ("opened", "duty_engineer"),
        ("opened", "duty_manager"),
        ("opened", "leadership"),
    ]
    # The major ticket is escalated: leadership hears of it too, and so from then on.
    assert tickets.escalate(major) is not None
    assert _told(db, major)[2:] == [("escalated", r) for r in ("duty_engineer", "duty_manager", "leadership")]
    assert tickets.mark_notified(major) is not None
    assert [role for reason, role in _told(db, major) if reason == "re-notify"] == [
        "duty_engineer",
        "duty_manager",
        "leadership",
    ]
    # An acknowledgement tells nobody; a site with only `*`'s recipients reaches leadership only.
    before = len(_told(db, major))
    tickets.act(major, Action.ACKNOWLEDGE, ActionFields(), "lee")
    assert len(_told(db, major)) == before
    assert _told(db, _open(tickets, Severity.EMERGENCY, site="s2")) == [("opened", "leadership")]


def test_an_alarm_raise_writes_its_notifications_and_a_redelivery_none(
    db: Database, tickets: TicketService
) -> None:
    event = AlarmEvent(
        kind="raised",
        site="s1",
        device_id="elev-1",
        device_type="elevator",
        rule="entrapment",
        severity=Severity.EMERGENCY,
        ts=T0,
        title="Entrapment",
        detail={},
    )
    ticket_id = tickets.apply_alarm(event)
    assert ticket_id is not None
    assert tickets.apply_alarm(event) == ticket_id  # the same raise again: nothing new
    assert [role for _, role in _told(db, ticket_id)] == ["duty_engineer", "duty_manager", "leadership"]


def test_a_ticket_and_its_notifications_are_recorded_together_or_not_at_all(
    db: Database, outbox: Outbox
) -> None:
    def refuse(*_: object) -> None:
        raise RuntimeError("refused")

    tickets = TicketService(db, in_transaction=[outbox.write])
    with pytest.raises(RuntimeError):
        tickets.open_ticket(
            NewTicket(site="s1", title="leak", severity=Severity.MAJOR), "desk", attach=refuse
        )
    broken = TicketService(db, in_transaction=[outbox.write, refuse])
    with pytest.raises(RuntimeError):
        broken.open_ticket(NewTicket(site="s1", title="leak", severity=Severity.MAJOR), "desk")
    with db.read() as s:
        assert s.scalars(select(Ticket)).all() == []
        assert s.scalars(select(Notification)).all() == []


@pytest.mark.parametrize(
    ("attempts", "expected"), [(1, 5.0), (2, 10.0), (3, 20.0), (8, 640.0), (9, 900.0), (500, 900.0)]
)
def test_backoff_doubles_up_to_its_limit(attempts: int, expected: float) -> None:
    assert backoff_s(attempts, 5.0, 900.0) == expected


def test_a_failing_webhook_is_tried_again_with_backoff_until_each_arrives_once(
    db: Database, tickets: TicketService, outbox: Outbox, receiver: Receiver, clock: Clock
) -> None:
    receiver.fail_first = 3  # the first three POSTs get 503
    courier = Courier(outbox, Timing(backoff_s=5.0, backoff_max_s=900.0))
    major = _open(tickets, Severity.MAJOR)  # two notifications: engineer and manager
    waits = []
    while len(receiver.accepted) < 2:
        if courier.deliver_due() == 0:
            due = outbox.next_due()
            assert due is not None
            waits.append((due - clock.now).total_seconds())
            clock.advance(waits[-1])
    assert waits == [5.0, 10.0]  # engineer and manager failed at once (3 POSTs in two rounds), then doubled
    assert courier.attempts_failed == 3 and courier.sent == 2
    with db.read() as s:
        rows = s.scalars(select(Notification).where(Notification.ticket_id == major)).all()
    assert {r.state for r in rows} == {Delivery.DELIVERED}
    assert sorted(r.idempotency_key for r in rows) == sorted(receiver.keys())
    # Every attempt of a notification carries the same key, in the header and in the body.
    assert all(key == body["idempotency_key"] for _, key, body in receiver.posts)
    assert {path for path, _, _ in receiver.accepted} == {"/eng", "/mgr"}
    body = receiver.accepted[0][2]
    assert body["ticket_id"] == major and body["class"] == "major" and body["reason"] == "opened"
    assert courier.deliver_due() == 0  # nothing is sent twice


def test_a_notification_is_given_up_only_after_the_time_limit_and_stays_visible(
    db: Database, tickets: TicketService, outbox: Outbox, receiver: Receiver, clock: Clock
) -> None:
    receiver.fail_first = 10**9  # never accepts
    courier = Courier(outbox, Timing(backoff_s=5.0, backoff_max_s=900.0, give_up_s=6 * 3600))
    _open(tickets, Severity.ROUTINE)
    written = clock.now
    while outbox.counts()[Delivery.PENDING]:
        courier.deliver_due()
        due = outbox.next_due()
        if due is not None:
            clock.advance(max(0.0, (due - clock.now).total_seconds()))
    [row] = outbox.list(state=Delivery.FAILED)
    assert row.given_up_at is not None and row.given_up_at - written >= timedelta(hours=6)
    assert row.last_error == "answered 503" and row.attempts == len(receiver.posts) > 20
    assert outbox.counts() == {Delivery.PENDING: 0, Delivery.DELIVERED: 0, Delivery.FAILED: 1}
    assert courier.given_up == 1 and courier.sent == 0


def test_two_couriers_share_one_outbox_and_send_each_notification_once(
    db: Database, tickets: TicketService, receiver: Receiver
) -> None:
    # Real time here: both couriers run on threads of their own and claim concurrently.
    outbox = Outbox(db, lambda: _book(receiver))
    couriers = [Courier(outbox, Timing()) for _ in range(2)]
    shared = TicketService(db, in_transaction=[outbox.write], listeners=[c.wake for c in couriers])
    for courier in couriers:
        courier.start()
    try:
        for n in range(15):
            shared.open_ticket(NewTicket(site="s1", title=f"leak {n}", severity=Severity.MAJOR), "desk")
        wait_until(lambda: len(receiver.posts) >= 30, what="every notification")
        for courier in couriers:
            courier.stop()
        assert outbox.counts()[Delivery.DELIVERED] == 30
        keys = [key for _, key, _ in receiver.posts]
        assert len(keys) == len(set(keys)) == 30
    finally:
        for courier in couriers:
            courier.stop()


def test_a_claim_lapses_after_its_lease_and_the_late_courier_cannot_undo_the_next(
    tickets: TicketService, outbox: Outbox, clock: Clock
) -> None:
    _open(tickets, Severity.ROUTINE)
    [first] = outbox.claim(10, lease_s=60)
    assert outbox.claim(10, lease_s=60) == []  # held while its lease lasts
    clock.advance(61)  # its courier died mid-attempt: due again
    [second] = outbox.claim(10, lease_s=60)
    assert (first.id, first.attempts, second.attempts) == (second.id, 1, 2)
    assert second.idempotency_key == first.idempotency_key  # so a receiver drops a repeat
    outbox.delivered(second)
    assert outbox.failed(first, "timed out", wait_s=5, give_up_s=3600) is False  # too late to count
    [row] = outbox.list()
    assert (row.state, row.last_error) == (Delivery.DELIVERED, None)


def test_a_stopping_courier_gives_back_what_it_had_not_tried(tickets: TicketService, outbox: Outbox) -> None:
    _open(tickets, Severity.EMERGENCY)
    claimed = outbox.claim(10, lease_s=600)
    assert len(claimed) == 3
    outbox.release(claimed)
    again = outbox.claim(10, lease_s=600)  # due at once, the attempt not counted
    assert sorted(c.id for c in again) == sorted(c.id for c in claimed)
    assert {c.attempts for c in again} == {1}
