"""Password hashes: argon2 through pwdlib, and the rules a new password must meet."""

from __future__ import annotations

import functools

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

MIN_LENGTH = 8
MAX_LENGTH = 256

# Argon2id with 19 MiB, 2 passes, 1 lane: one of OWASP's equivalent configurations, chosen over the
# library's 64 MiB because a service that runs beside the collector should not double its memory
# for every log-in. A hash keeps its parameters, so hashes made before still verify.
_hasher = PasswordHash((Argon2Hasher(time_cost=2, memory_cost=19_456, parallelism=1),))


@functools.cache
def _decoy() -> str:
    """A hash verified when the user name is unknown, so a wrong name takes as long as a wrong password."""
    # Made at the first log-in, not at import: argon2 takes its memory for the time of a hash, and
    # at import that was the service's peak memory before it had done any work.
    return _hasher.hash("no such user: this hash only spends the time a real one would")


class WeakPassword(ValueError):
    """A new password that is too short or too long."""


def check_new(password: str) -> None:
    """Refuse a password shorter than 8 or longer than 256 characters."""
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"a password needs at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"a password has at most {MAX_LENGTH} characters")


def hash_password(password: str) -> str:
    """The argon2 hash kept for `password`."""
    return _hasher.hash(password)


def verify(password: str, hashed: str | None) -> bool:
    """Whether `password` matches `hashed`; None (no such user) spends the same time and says no."""
    # Longer than any password can be set: refused, after the same time spent.
    too_long = len(password) > MAX_LENGTH
    decoy = _decoy()  # made at every first log-in alike, whoever logs in
    if hashed is None or too_long:
        _hasher.verify(password[:MAX_LENGTH], decoy if hashed is None else hashed)
        return False
    return _hasher.verify(password, hashed)
