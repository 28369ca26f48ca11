"""Summary statistics of durations, pure: median, the 90th percentile by nearest rank, shares.

The percentile is the nearest-rank one: the smallest value with at least p % of the values at or
below it, so the figure is always a time that some ticket took (and a spreadsheet's
PERCENTILE.INC can differ from it by interpolating). The median is the middle value, or the mean
of the two middle ones.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def median(values: Sequence[float]) -> float | None:
    """The middle value (the mean of the two middle ones for an even count); None for none."""
    return float(statistics.median(values)) if values else None


def percentile(values: Sequence[float], p: float) -> float | None:
    """The nearest-rank p-th percentile (0 < p ≤ 100): the value at rank ⌈p/100 · n⌉; None for none."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p * len(ordered) / 100))
    return float(ordered[rank - 1])


def share(part: int, whole: int) -> float | None:
    """part ÷ whole, or None when there is no whole."""
    return part / whole if whole else None
