"""Who is told of a ticket: duty engineer, then duty manager, then leadership, by class and escalation.

Pure: the book comes from the recipients file (`tickets/recipientsfile.py`); nothing here does I/O.
Manual §4.2.3: a routine fault is for the staff on duty; a major fault brings in the duty manager;
an emergency is reported to leadership at once. Each escalation of an unacknowledged ticket moves
one step further up the same chain.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from ground.severity import Severity

ANY_SITE = "*"


class Duty(StrEnum):
    """A step of the chain, lowest first; the names are the recipients file's keys."""

    ENGINEER = "duty_engineer"
    MANAGER = "duty_manager"
    LEADERSHIP = "leadership"


CHAIN = (Duty.ENGINEER, Duty.MANAGER, Duty.LEADERSHIP)
# How many steps of the chain a class reaches before any escalation.
_REACH = {Severity.ROUTINE: 1, Severity.MAJOR: 2, Severity.EMERGENCY: 3}
CATCH_ALL = "webhook"  # the role of FACILITY_WEBHOOK_URL, told of everything


@dataclass(frozen=True)
class Recipient:
    """Someone to tell, and where: a webhook URL, and optionally their user name in the accounts."""

    name: str
    url: str
    user: str | None = None


@dataclass(frozen=True)
class Addressee:
    """A recipient chosen for one notification, with the step of the chain that chose them."""

    recipient: Recipient
    role: str


def duties(severity: Severity, escalation_level: int = 0) -> tuple[Duty, ...]:
    """The steps of the chain a ticket of this class reaches at this escalation level."""
    return CHAIN[: min(len(CHAIN), _REACH[severity] + max(0, escalation_level))]


@dataclass(frozen=True)
class RecipientBook:
    """The recipients per site and duty; a site's entry for a duty takes the place of `*`'s."""

    sites: Mapping[str, Mapping[Duty, Sequence[Recipient]]] = field(default_factory=dict)

    def on_duty(self, site: str, duty: Duty) -> Sequence[Recipient]:
        """Who holds this duty at the site: the site's own, else those of every site (`*`)."""
        own = self.sites.get(site, {})
        if duty in own:
            return own[duty]
        return self.sites.get(ANY_SITE, {}).get(duty, ())

    def addressees(
        self, site: str, severity: Severity, escalation_level: int = 0, catch_all: str | None = None
    ) -> list[Addressee]:
        """Whom to tell of a ticket, lowest duty first; one each per URL, so nobody hears twice."""
        chosen = [
            Addressee(recipient, duty.value)
            for duty in duties(severity, escalation_level)
            for recipient in self.on_duty(site, duty)
        ]
        if catch_all:
            chosen.append(Addressee(Recipient("FACILITY_WEBHOOK_URL", catch_all), CATCH_ALL))
        seen: set[str] = set()
        unique = []
        for addressee in chosen:
            if addressee.recipient.url not in seen:
                seen.add(addressee.recipient.url)
                unique.append(addressee)
        return unique
