"""Who may do what: the roles of staff accounts and tokens, and the sites a caller sees."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

T = TypeVar("T")


class Role(StrEnum):
    """A user's or a token's role; the README lists what each may do."""

    ADMIN = "admin"
    MANAGER = "manager"
    ENGINEER = "engineer"
    GUARD = "guard"
    # Records occupants' reports and follows them; nothing else.
    FRONT_DESK = "front_desk"


@dataclass(frozen=True)
class Caller:
    """Who is asking: a name, a role, and the sites they are limited to (None: every site)."""

    name: str
    role: Role
    sites: frozenset[str] | None = None

    def sees(self, site: str) -> bool:
        """Whether this caller may see anything of `site`."""
        return self.sites is None or site in self.sites

    def visible(self, site: str | None) -> frozenset[str] | None:
        """The sites a list asked for `site` (None: any) may show; None means every site."""
        if site is not None:
            return frozenset({site}) if self.sees(site) else frozenset()
        return self.sites

    def only_visible(self, items: Iterable[T], site_of: str = "site") -> list[T]:
        """The items whose `site` attribute this caller sees."""
        return [item for item in items if self.sees(getattr(item, site_of))]
