"""The completion report: completion and on-time rates per guard and per route, over rounds that ended."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from patrol.evaluation import ENDED, RoundStatus, VisitStatus
from records.models import PatrolRound


@dataclass
class Tally:
    """Ended rounds of one guard or route, and their checkpoints."""

    rounds: int = 0
    completed: int = 0  # rounds with every checkpoint scanned
    checkpoints: int = 0
    on_time: int = 0  # checkpoints scanned on time
    missed: int = 0  # checkpoints never scanned

    def add(self, r: PatrolRound) -> None:
        """Count one ended round."""
        self.rounds += 1
        self.completed += r.status == RoundStatus.COMPLETED
        self.checkpoints += len(r.visits)
        self.on_time += sum(1 for v in r.visits if v.status == VisitStatus.ON_TIME)
        self.missed += sum(1 for v in r.visits if v.status == VisitStatus.MISSED)

    def rates(self, name: str, key: str) -> dict[str, Any]:
        """The report's row: `name` (guard or route) `key`, the counts and the two rates."""
        return {
            name: key,
            **asdict(self),
            "completion_rate": self.completed / self.rounds if self.rounds else None,
            "on_time_rate": self.on_time / self.checkpoints if self.checkpoints else None,
        }


def completion_report(
    rounds: Iterable[PatrolRound], since: datetime, until: datetime, site: str | None
) -> dict[str, Any]:
    """The report over `rounds` (those that started in [since, until)); rounds not yet ended are left out.

    A round shared by several guards counts for each of them.
    """
    by_guard: dict[str, Tally] = {}
    by_route: dict[str, Tally] = {}
    for r in rounds:
        if r.status not in ENDED:
            continue
        for guard in r.guards:
            by_guard.setdefault(guard, Tally()).add(r)
        by_route.setdefault(r.route_id, Tally()).add(r)
    return {
        "from": since,
        "until": until,
        "site": site,
        "by_guard": [t.rates("guard", k) for k, t in sorted(by_guard.items())],
        "by_route": [t.rates("route", k) for k, t in sorted(by_route.items())],
    }
