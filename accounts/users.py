"""The staff accounts: add, list, disable, change a password, and check one at a log-in."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from accounts.passwords import check_new, hash_password, verify
from accounts.roles import Role
from ground.contract import SITE_OR_DEVICE_ID
from records.db import Database
from records.models import ApiToken, User

USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


class UserExists(ValueError):
    """A user of that name is already there."""


class UserMissing(LookupError):
    """No user of that name."""


class BadUser(ValueError):
    """A user name or a site that is not allowed; `field` says which."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def check_username(name: str) -> str:
    """`name` when it is a valid user name: lower case letters, digits, '.', '_' and '-'."""
    if not USERNAME.fullmatch(name):
        raise BadUser("username", "a user name is 1-64 of a-z, 0-9, '.', '_', '-', first a letter or digit")
    return name


def check_sites(sites: Iterable[str]) -> list[str]:
    """The sites, each a valid site id, without repeats, in order."""
    found: list[str] = []
    for site in sites:
        if not SITE_OR_DEVICE_ID.fullmatch(site):
            raise BadUser("sites", f"{site!r} is not a site id")
        if site not in found:
            found.append(site)
    return found


class UserBook:
    """Staff accounts in the records database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def add(self, username: str, password: str, role: Role, sites: Iterable[str] = ()) -> User:
        """Create an account; the password is kept only as its argon2 hash."""
        check_username(username)
        check_new(password)
        now = datetime.now(UTC)
        user = User(
            username=username,
            password_hash=hash_password(password),
            role=Role(role).value,
            sites=check_sites(sites),
            created_at=now,
            password_changed_at=now,
        )
        try:
            with self._db.session() as s:
                s.add(user)
        except IntegrityError:
            raise UserExists(f"user {username} exists") from None
        return user

    def list(self) -> list[User]:
        """Every account, by name."""
        with self._db.read() as s:
            return list(s.scalars(select(User).order_by(User.username)))

    def get(self, username: str) -> User:
        """One account by name."""
        with self._db.read() as s:
            user = s.scalars(select(User).where(User.username == username)).one_or_none()
        if user is None:
            raise UserMissing(f"no user {username}")
        return user

    def by_id(self, user_id: int) -> User | None:
        """One account by id, or None."""
        with self._db.read() as s:
            return s.get(User, user_id)

    def authenticate(self, username: str, password: str) -> User | None:
        """The enabled account these credentials belong to, or None, taking as long either way."""
        with self._db.read() as s:
            user = s.scalars(select(User).where(User.username == username)).one_or_none()
        ok = verify(password, user.password_hash if user is not None else None)
        if user is None or not ok or user.disabled_at is not None:
            return None
        return user

    def disable(self, username: str) -> User:
        """Disable an account and revoke its log-in tokens; disabling it again keeps the first time."""
        return self._change(username, disable=True)

    def set_password(self, username: str, password: str) -> User:
        """Change an account's password; its log-in tokens are revoked, so it logs in again."""
        check_new(password)
        return self._change(username, password_hash=hash_password(password))

    def set_access(self, username: str, role: Role | None = None, sites: Iterable[str] | None = None) -> User:
        """Change an account's role or sites; its tokens act with them from their next request."""
        checked = check_sites(sites) if sites is not None else None
        with self._db.session() as s:
            user = _locked(s, username)
            if role is not None:
                user.role = Role(role).value
            if checked is not None:
                user.sites = checked
            return user

    def _change(self, username: str, disable: bool = False, password_hash: str | None = None) -> User:
        now = datetime.now(UTC)
        with self._db.session() as s:
            user = _locked(s, username)
            if disable and user.disabled_at is None:
                user.disabled_at = now
            if password_hash is not None:
                user.password_hash = password_hash
                user.password_changed_at = now
            s.execute(
                update(ApiToken)
                .where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            return user


def _locked(s: Session, username: str) -> User:
    """The account of that name, locked for this change (PostgreSQL); UserMissing without one."""
    user = s.scalars(select(User).where(User.username == username).with_for_update()).one_or_none()
    if user is None:
        raise UserMissing(f"no user {username}")
    return user
