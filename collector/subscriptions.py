"""The topic filters a persistent session may still hold, remembered in the data folder across runs.

The broker keeps a session's subscriptions after the collector goes: a worker whose sites change
would otherwise go on receiving its old sites' messages beside the worker that now serves them,
and overlapping filters deliver a message twice.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path

from ground.contract import ALL_TOPICS, SUBSCRIPTIONS

log = logging.getLogger(__name__)

# What the collector subscribed to before it remembered anything: every earlier session may hold these.
EARLIER = frozenset((ALL_TOPICS, *SUBSCRIPTIONS))


class SubscriptionMemory:
    """The filters the broker may hold for the collector's session, kept in a small JSON file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def held(self) -> frozenset[str]:
        """What an earlier run may have left subscribed; the filters of every earlier version too."""
        try:
            filters = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return EARLIER
        except (OSError, ValueError):
            log.warning("%s unreadable: unsubscribing only the default filters", self.path, exc_info=True)
            return EARLIER
        return EARLIER | frozenset(str(f) for f in filters)

    def remember(self, filters: Iterable[str]) -> None:
        """Write what the session may hold from now on (written beside, then renamed into place)."""
        partial = self.path.with_suffix(".partial")
        partial.write_text(json.dumps(sorted(set(filters))), encoding="utf-8")
        os.replace(partial, self.path)
