"""Time-series stores behind one small interface: write a batch of lines, query a range, keep a retention."""

from collector.stores.base import StoreRejected, StoreUnavailable, TimeSeriesStore

__all__ = ["StoreRejected", "StoreUnavailable", "TimeSeriesStore"]
