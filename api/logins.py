"""A log-in: the lock on guessing, the password check, and a token for the user's role and sites."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from accounts.lockout import LoginLocks
from accounts.roles import Role
from accounts.users import UserBook
from api.auth import TokenBook
from records.models import User


class LoginLocked(Exception):
    """Too many failed log-ins for this user from this address."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"too many failed log-ins; try again in {retry_after_s} s")
        self.retry_after_s = retry_after_s


class LoginFailed(Exception):
    """Wrong user name or password (which, is not said), or a disabled account."""


@dataclass(frozen=True)
class Session:
    """What a log-in gives: a token, whose it is, and until when it is valid."""

    token: str
    user: User
    expires_at: datetime


@dataclass
class Logins:
    """Checks credentials under the lock and issues log-in tokens."""

    users: UserBook
    tokens: TokenBook
    locks: LoginLocks
    hours: float

    def log_in(self, username: str, password: str, address: str) -> Session:
        """A session for these credentials; LoginLocked or LoginFailed otherwise."""
        wait_s = self.locks.retry_after(username, address)
        if wait_s is not None:
            raise LoginLocked(wait_s)
        user = self.users.authenticate(username, password)
        if user is None:
            self.locks.failed(username, address)
            raise LoginFailed("wrong user name or password")
        self.locks.succeeded(username, address)
        expires_at = datetime.now(UTC) + timedelta(hours=self.hours)
        token, _row = self.tokens.issue(user.username, Role(user.role), expires_at, user_id=user.id)
        return Session(token, user, expires_at)

    def log_out(self, token: str) -> None:
        """End a session: its token is refused from now on."""
        self.tokens.revoke_token(token)
