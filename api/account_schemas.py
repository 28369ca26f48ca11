"""Request and response shapes of log-ins and staff accounts."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from accounts.passwords import MAX_LENGTH, MIN_LENGTH
from accounts.roles import Role
from api.schemas import SITE_OR_DEVICE, Input
from records.models import User

USERNAME = r"^[a-z0-9][a-z0-9._-]{0,63}$"
Site = Annotated[str, Field(pattern=SITE_OR_DEVICE)]


class Login(Input):
    """A user name and password."""

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=MAX_LENGTH)


class LoggedIn(BaseModel):
    """A bearer token for the user's role and sites, until `expires_at`."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"
    role: Role
    expires_at: datetime
    username: str
    sites: list[str] = Field(description="the sites the user is limited to; empty: every site")


class UserCreate(Input):
    """A new staff account."""

    username: str = Field(pattern=USERNAME)
    password: str = Field(min_length=MIN_LENGTH, max_length=MAX_LENGTH)
    role: Role
    sites: list[Site] = Field(default_factory=list, max_length=100)


class UserChange(Input):
    """What an admin changes of an account: any of its role, sites, password, or disabling it."""

    role: Role | None = None
    sites: list[Site] | None = Field(default=None, max_length=100)
    password: str | None = Field(default=None, min_length=MIN_LENGTH, max_length=MAX_LENGTH)
    disabled: Literal[True] | None = Field(default=None, description="true disables the account")


class NewPassword(Input):
    """A user's new password."""

    password: str = Field(min_length=MIN_LENGTH, max_length=MAX_LENGTH)


class UserPublic(BaseModel):
    """A staff account as listed: never its password or hash."""

    username: str
    role: Role
    sites: list[str]
    created_at: datetime
    password_changed_at: datetime
    disabled_at: datetime | None


def user_public(u: User) -> UserPublic:
    """The public view of an account."""
    return UserPublic(
        username=u.username,
        role=Role(u.role),
        sites=list(u.sites),
        created_at=u.created_at,
        password_changed_at=u.password_changed_at,
        disabled_at=u.disabled_at,
    )
