"""Bearer tokens with roles: issued to machines, given to staff at a log-in, or the bootstrap admin token."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select

from accounts.roles import Caller, Role
from api.throttle import AuthFailures
from records.db import Database
from records.models import ApiToken, User


def token_hash(token: str) -> str:
    """What is kept of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """A fresh random token."""
    return secrets.token_urlsafe(32)


class TokenMissing(LookupError):
    """No token with that id."""


@dataclass(frozen=True)
class _Known:
    """A token found: who holds it, until when it is valid, and until when it is remembered."""

    caller: Caller
    expires_at: datetime | None
    remember_until: float


class TokenBook:
    """Looks tokens up: the bootstrap admin token, or one issued through the API.

    A token found is remembered for `remember_s`, so most requests check it without touching the
    database. Its expiry is checked on every use, remembered or not; a token revoked through this
    book is forgotten at once, one revoked by another process at most `remember_s` later.
    """

    def __init__(self, db: Database, admin_token: str | None, remember_s: float = 60.0) -> None:
        self._db = db
        self._admin = admin_token
        self._remember_s = remember_s
        self._known: dict[str, _Known] = {}
        # Raised by every revocation: a look-up that began before one does not remember its answer.
        self._revocations = 0

    def caller(self, token: str) -> Caller | None:
        """Who holds `token`, or None when it is unknown, revoked or expired."""
        if self._admin and hmac.compare_digest(token.encode(), self._admin.encode()):
            return Caller("admin", Role.ADMIN)
        digest = token_hash(token)
        now = datetime.now(UTC)
        known = self._known.get(digest)
        if known is not None and known.remember_until > time.monotonic():
            if _expired(known.expires_at, now):
                self._known.pop(digest, None)
                return None
            return known.caller
        revocations = self._revocations
        with self._db.read() as s:
            found = s.execute(
                select(ApiToken, User)
                .outerjoin(User, ApiToken.user_id == User.id)
                .where(ApiToken.token_sha256 == digest, ApiToken.revoked_at.is_(None))
            ).one_or_none()
        if found is None or _expired(found[0].expires_at, now):
            self._known.pop(digest, None)
            return None
        row, user = found
        if row.user_id is None:
            caller = Caller(row.name, Role(row.role))
        elif user is None or user.disabled_at is not None:
            return None
        else:
            # A log-in's token acts with the user's role and sites as they are now.
            caller = Caller(user.username, Role(user.role), frozenset(user.sites) if user.sites else None)
        if revocations == self._revocations:
            self._known[digest] = _Known(caller, row.expires_at, time.monotonic() + self._remember_s)
        return caller

    def issue(
        self, name: str, role: Role, expires_at: datetime | None = None, user_id: int | None = None
    ) -> tuple[str, ApiToken]:
        """Create a token; only its hash is kept, so this is the one time it is seen."""
        token = new_token()
        row = ApiToken(
            token_sha256=token_hash(token),
            name=name,
            role=role.value,
            created_at=datetime.now(UTC),
            expires_at=expires_at,
            user_id=user_id,
        )
        with self._db.session() as s:
            s.add(row)
        return token, row

    def tokens(self, limit: int = 1000, offset: int = 0) -> list[ApiToken]:
        """Issued tokens, newest first, revoked and expired ones included."""
        with self._db.read() as s:
            return list(s.scalars(select(ApiToken).order_by(ApiToken.id.desc()).limit(limit).offset(offset)))

    def forget(self) -> None:
        """Forget every remembered token, after a change to users this book cannot see (a disable)."""
        self._revocations += 1
        self._known.clear()

    def revoke_token(self, token: str) -> None:
        """Revoke a token by its value (a log-out); an unknown one is ignored."""
        digest = token_hash(token)
        with self._db.session() as s:
            row = s.scalars(select(ApiToken).where(ApiToken.token_sha256 == digest)).one_or_none()
            if row is not None and row.revoked_at is None:
                row.revoked_at = datetime.now(UTC)
        self._revocations += 1
        self._known.pop(digest, None)

    def revoke(self, token_id: int) -> ApiToken:
        """Revoke a token from now on; revoking it again keeps the first time."""
        with self._db.session() as s:
            row = s.get(ApiToken, token_id)
            if row is None:
                raise TokenMissing(f"no token {token_id}")
            if row.revoked_at is None:
                row.revoked_at = datetime.now(UTC)
        self._revocations += 1
        self._known.pop(row.token_sha256, None)
        return row


def _expired(expires_at: datetime | None, now: datetime) -> bool:
    return expires_at is not None and expires_at <= now


_bearer = HTTPBearer(auto_error=False)


async def current_caller(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Caller:
    """The caller of this request; 401 without a valid bearer token, 429 after too many of those.

    Async, so it runs on the event loop rather than taking a worker-thread round trip per
    request: a token is mostly found in memory, and otherwise by one indexed read.
    """
    book: TokenBook = request.app.state.tokens
    caller = book.caller(credentials.credentials) if credentials else None
    if caller is not None:
        return caller
    # Only a request without a valid token is ever held back, whatever its address.
    failures: AuthFailures = request.app.state.auth_failures
    address = request.client.host if request.client else "unknown"
    wait_s = failures.retry_after(address)
    failures.record(address)
    if wait_s is not None:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"too many failed authentications from this address; try again in {wait_s} s",
            headers={"Retry-After": str(wait_s)},
        )
    raise HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        "a valid bearer token is required",
        headers={"WWW-Authenticate": "Bearer"},
    )


# The roles each dependency made by `allow` admits, so the API's description can say which
# operations may answer 403.
_ADMITTED: dict[object, frozenset[Role]] = {}


def allow(*roles: Role) -> Callable[[Caller], Awaitable[Caller]]:
    """A dependency that admits the given roles (admin always) and answers 403 to the rest."""

    async def check(caller: Annotated[Caller, Depends(current_caller)]) -> Caller:
        if caller.role is not Role.ADMIN and caller.role not in roles:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"role {caller.role.value} may not do this")
        return caller

    _ADMITTED[check] = frozenset((Role.ADMIN, *roles))
    return check


def admitted_roles(dependency: Callable[..., object]) -> frozenset[Role] | None:
    """The roles a dependency made by `allow` admits; None for any other dependency."""
    return _ADMITTED.get(dependency)


__all__ = ["ANYONE", "STAFF", "Caller", "Role", "TokenBook", "allow", "current_caller"]

# Staff who read everything of their sites; the front desk sees only occupants' reports.
ANYONE = (Role.MANAGER, Role.ENGINEER, Role.GUARD)
STAFF = (Role.MANAGER, Role.ENGINEER)
