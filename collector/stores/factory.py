"""Opens the time-series store the settings name."""

from __future__ import annotations

from collector.stores.base import TimeSeriesStore
from ground.settings import Settings


def open_store(settings: Settings) -> TimeSeriesStore:
    """InfluxDB (v2 or v1 API) when `FACILITY_INFLUX_URL` is set, else the embedded SQLite store."""
    if settings.influx_url is None:
        from collector.stores.sqlite import SqliteStore

        return SqliteStore(settings.embedded_store_path, settings.retention_days)
    from collector.stores.influx import InfluxV1Store, InfluxV2Store

    if settings.influx_api == "v1":
        return InfluxV1Store(
            settings.influx_url,
            settings.influx_database,
            settings.influx_username,
            settings.influx_password,
            settings.influx_timeout_s,
        )
    return InfluxV2Store(
        settings.influx_url,
        settings.influx_token,
        settings.influx_org,
        settings.influx_bucket,
        settings.influx_timeout_s,
    )
