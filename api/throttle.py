"""Failed authentications counted per client address, to hold back one that keeps guessing tokens."""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable


class AuthFailures:
    """Failures per address over a sliding window; past `limit` of them the address is held back.

    Memory is bounded: at most `max_addresses` addresses, each with at most `limit` times; the
    address that failed least recently is forgotten first. Used from the event loop only.
    """

    def __init__(
        self,
        limit: int = 20,
        window_s: float = 60.0,
        max_addresses: int = 4096,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self.max_addresses = max_addresses
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, address: str) -> int | None:
        """Whole seconds until `address` may try again, or None when it is not held back."""
        times = self._failures.get(client_key(address))
        if times is None or len(times) < self.limit:
            return None
        wait = times[0] + self.window_s - self._clock()
        return math.ceil(wait) if wait > 0 else None

    def record(self, address: str) -> None:
        """Count one failure (or one attempt while held back, so a client that keeps on stays held)."""
        key = client_key(address)
        now = self._clock()
        times = self._failures.get(key)
        if times is None:
            times = self._failures[key] = deque(maxlen=self.limit)
            while len(self._failures) > self.max_addresses:
                self._failures.popitem(last=False)
        else:
            self._failures.move_to_end(key)
            while times and times[0] <= now - self.window_s:
                times.popleft()
        times.append(now)

    def __len__(self) -> int:
        return len(self._failures)


def client_key(address: str) -> str:
    """What failures are counted by: the address, or for IPv6 its /64, which one client often holds whole."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)
