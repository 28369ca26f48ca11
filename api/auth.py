"""Bearer tokens with roles; the bootstrap admin token comes from FACILITY_ADMIN_TOKEN."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select

from records.db import Database
from records.models import ApiToken


class Role(StrEnum):
    """Who a token belongs to; README lists what each may do."""

    ADMIN = "admin"
    MANAGER = "manager"
    ENGINEER = "engineer"
    GUARD = "guard"


@dataclass(frozen=True)
class Caller:
    """The authenticated caller of a request."""

    name: str
    role: Role


def token_hash(token: str) -> str:
    """What is kept of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """A fresh random token."""
    return secrets.token_urlsafe(32)


class TokenBook:
    """Looks tokens up: the bootstrap admin token, or one issued through the API.

    A token found is remembered for `remember_s`, so most requests check it without touching the
    database; a token revoked in the database is refused at most that long after.
    """

    def __init__(self, db: Database, admin_token: str | None, remember_s: float = 60.0) -> None:
        self._db = db
        self._admin = admin_token
        self._remember_s = remember_s
        self._known: dict[str, tuple[Caller, float]] = {}

    def caller(self, token: str) -> Caller | None:
        """Who holds `token`, or None."""
        if self._admin and hmac.compare_digest(token.encode(), self._admin.encode()):
            return Caller("admin", Role.ADMIN)
        digest = token_hash(token)
        known = self._known.get(digest)
        if known is not None and known[1] > time.monotonic():
            return known[0]
        with self._db.read() as s:
            row = s.scalars(
                select(ApiToken).where(ApiToken.token_sha256 == digest, ApiToken.revoked_at.is_(None))
            ).one_or_none()
        if row is None:
            self._known.pop(digest, None)
            return None
        caller = Caller(row.name, Role(row.role))
        self._known[digest] = (caller, time.monotonic() + self._remember_s)
        return caller

    def issue(self, name: str, role: Role) -> str:
        """Create a token; only its hash is kept, so this is the one time it is seen."""
        token = new_token()
        with self._db.session() as s:
            s.add(
                ApiToken(
                    token_sha256=token_hash(token), name=name, role=role.value, created_at=datetime.now(UTC)
                )
            )
        return token


_bearer = HTTPBearer(auto_error=False)


async def current_caller(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Caller:
    """The caller of this request; 401 without a valid bearer token.

    Async, so it runs on the event loop rather than taking a worker-thread round trip per
    request: a token is mostly found in memory, and otherwise by one indexed read.
    """
    book: TokenBook = request.app.state.tokens
    caller = book.caller(credentials.credentials) if credentials else None
    if caller is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "a valid bearer token is required",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return caller


def allow(*roles: Role) -> Callable[[Caller], Awaitable[Caller]]:
    """A dependency that admits the given roles (admin always) and answers 403 to the rest."""

    async def check(caller: Annotated[Caller, Depends(current_caller)]) -> Caller:
        if caller.role is not Role.ADMIN and caller.role not in roles:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"role {caller.role.value} may not do this")
        return caller

    return check


ANYONE = (Role.MANAGER, Role.ENGINEER, Role.GUARD)
STAFF = (Role.MANAGER, Role.ENGINEER)
