"""The interface every time-series store offers, and the two ways a write can fail."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Literal, Protocol

Aggregate = Literal["mean", "min", "max", "last", "count"]


def each_line(lines: Sequence[str]) -> Iterator[str]:
    """The single lines of a write's items, each of which may hold several separated by newlines."""
    for text in lines:
        yield from text.split("\n")


class StoreRejected(Exception):
    """The store refused these points as bad (HTTP 400): retrying cannot help, so dead-letter them."""


class StoreUnavailable(Exception):
    """The store could not take the write now (down, 5xx, auth, missing database): retry with backoff."""


class TimeSeriesStore(Protocol):
    """Where readings go: InfluxDB (v2 or v1 API) or the embedded SQLite file."""

    def write(self, lines: Sequence[str]) -> None:
        """Store a batch of line-protocol lines (time in ms); raises StoreRejected or StoreUnavailable.

        An item may hold several lines separated by newlines, as a batch handed over whole does.
        """

    def query(
        self,
        measurement: str,
        field: str,
        start_ms: int,
        end_ms: int,
        *,
        site: str | None = None,
        device_id: str | None = None,
        every_s: int | None = None,
        aggregate: Aggregate = "mean",
    ) -> list[tuple[int, Any]]:
        """`field` of `measurement` in [start, end), raw or aggregated into `every_s` buckets."""

    def close(self) -> None:
        """Release connections."""
