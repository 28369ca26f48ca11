"""The lock on guessing passwords: 5 failures of one user from one address lock that pair for 15 minutes."""

from __future__ import annotations

import pytest

from accounts.lockout import LOCK_S, LoginLocks

HOME = "192.0.2.10"


class Clock:
    """Seconds that move only when the test says."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def locks(clock: Clock) -> LoginLocks:
    return LoginLocks(clock=clock)


def _fail(locks: LoginLocks, clock: Clock, times: int, user: str = "alice", address: str = HOME) -> None:
    for _ in range(times):
        locks.failed(user, address)
        clock.now += 1


def test_four_failures_do_not_lock_and_the_fifth_locks_for_15_minutes(
    locks: LoginLocks, clock: Clock
) -> None:
    _fail(locks, clock, 4)
    assert locks.retry_after("alice", HOME) is None
    _fail(locks, clock, 1)
    wait = locks.retry_after("alice", HOME)
    # The five failures took 5 s of the lock's 15 minutes.
    assert wait is not None and LOCK_S - 10 <= wait <= LOCK_S


def test_the_lock_holds_only_that_user_at_that_address(locks: LoginLocks, clock: Clock) -> None:
    _fail(locks, clock, 5)
    assert locks.retry_after("alice", HOME) is not None
    assert locks.retry_after("alice", "192.0.2.11") is None
    assert locks.retry_after("bob", HOME) is None
    # Failures of other pairs do not add up to a lock of a third.
    _fail(locks, clock, 4, address="192.0.2.11")
    _fail(locks, clock, 4, user="bob")
    assert locks.retry_after("alice", "192.0.2.11") is None
    assert locks.retry_after("bob", HOME) is None


def test_the_user_name_counts_whatever_its_case(locks: LoginLocks, clock: Clock) -> None:
    for name in ("alice", "Alice", "ALICE", "aLiCe"):
        _fail(locks, clock, 1, user=name)
    assert locks.retry_after("alice", HOME) is None
    _fail(locks, clock, 1, user="AlIcE")
    assert locks.retry_after("alice", HOME) is not None
    assert locks.retry_after("ALICE", HOME) is not None


def test_the_lock_ends_after_15_minutes(locks: LoginLocks, clock: Clock) -> None:
    _fail(locks, clock, 5)
    wait = locks.retry_after("alice", HOME)
    assert wait is not None
    clock.now += wait - 1
    assert locks.retry_after("alice", HOME) is not None, "still locked a second before the end"
    clock.now += 1
    assert locks.retry_after("alice", HOME) is None


def test_a_lock_lasts_15_minutes_even_when_the_failures_were_spread_out(
    locks: LoginLocks, clock: Clock
) -> None:
    # Five failures within 15 minutes, three minutes apart: the fifth locks the pair for 15 minutes.
    for _ in range(5):
        locks.failed("alice", HOME)
        clock.now += 180
    clock.now -= 180
    wait = locks.retry_after("alice", HOME)
    assert wait is not None and wait >= LOCK_S - 1, f"locked for {wait} s"


def test_failures_older_than_15_minutes_are_not_counted(locks: LoginLocks, clock: Clock) -> None:
    _fail(locks, clock, 4)
    clock.now += LOCK_S
    _fail(locks, clock, 4)
    assert locks.retry_after("alice", HOME) is None
    _fail(locks, clock, 1)
    assert locks.retry_after("alice", HOME) is not None


def test_a_successful_log_in_forgets_the_failures(locks: LoginLocks, clock: Clock) -> None:
    _fail(locks, clock, 4)
    locks.succeeded("Alice", HOME)
    _fail(locks, clock, 4)
    assert locks.retry_after("alice", HOME) is None
    _fail(locks, clock, 1)
    assert locks.retry_after("alice", HOME) is not None
