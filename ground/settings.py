"""Settings from FACILITY_* environment variables (or a .env file), validated once at start-up."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from ground.contract import SITE_OR_DEVICE_ID


class MqttEndpoint:
    """A broker address parsed from `mqtt://user:pass@host:port` (`mqtts://` for TLS)."""

    def __init__(
        self,
        url: str,
        ca_file: Path | None = None,
        cert_file: Path | None = None,
        key_file: Path | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError(f"{url!r}: expected mqtt://[user:pass@]host[:port] or mqtts://…")
        self.tls = parts.scheme == "mqtts"
        self.host = parts.hostname
        self.port = parts.port or (8883 if self.tls else 1883)
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.ca_file = ca_file
        self.cert_file = cert_file
        self.key_file = key_file

    def secure(self, client: Any) -> None:
        """Set up TLS on a paho client for `mqtts://`: the broker's certificate is always verified.

        With no CA file the system's trusted CAs verify it; a client certificate is sent when given.
        """
        if not self.tls:
            return
        client.tls_set(
            ca_certs=str(self.ca_file) if self.ca_file else None,
            certfile=str(self.cert_file) if self.cert_file else None,
            keyfile=str(self.key_file) if self.key_file else None,
            cert_reqs=ssl.CERT_REQUIRED,
        )

    def __repr__(self) -> str:
        scheme = "mqtts" if self.tls else "mqtt"
        user = f"{self.username}:***@" if self.username else ""
        return f"{scheme}://{user}{self.host}:{self.port}"


class Settings(BaseSettings):
    """Every setting of the service; `.env.example` documents each with its default."""

    model_config = SettingsConfigDict(env_prefix="FACILITY_", env_file=".env", extra="ignore")

    mqtt_url: str | None = Field(
        default=None, description="Broker URL; unset: `facility demo` starts an embedded broker."
    )
    mqtt_client_id: str = "facility-collector"
    # A worker of several: it subscribes to these sites' topics only and runs only their timers.
    sites: Annotated[frozenset[str] | None, NoDecode] = Field(
        default=None, description="Comma-separated site ids this worker serves; unset: every site."
    )
    mqtt_ca_file: Path | None = Field(default=None, description="CA certificate(s) for mqtts://.")
    mqtt_cert_file: Path | None = Field(default=None, description="Client certificate for mqtts://.")
    mqtt_key_file: Path | None = Field(default=None, description="Client certificate's key.")
    data_dir: Path = Path("data")

    influx_url: str | None = Field(default=None, description="Unset: the embedded SQLite store.")
    influx_api: Literal["v2", "v1"] = "v2"
    influx_token: str = ""
    influx_org: str = ""
    influx_bucket: str = "facility"
    influx_database: str = "facility"
    influx_username: str | None = None
    influx_password: str | None = None
    influx_timeout_s: float = 10.0

    batch_size: int = Field(default=5000, ge=1, le=100_000)
    flush_interval_s: float = Field(default=0.5, gt=0, le=60)
    buffer_sync: Literal["FULL", "NORMAL"] = "FULL"
    retention_days: int = Field(default=90, ge=1)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    clock_skew_s: int = Field(
        default=300, ge=0, description="A reading stamped further ahead of its arrival is refused."
    )
    dead_letter_days: int = Field(default=30, ge=1, description="Days dead letters are kept.")
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024, description="Largest API request body.")
    session_hours: float = Field(
        default=12.0, gt=0, le=24 * 30, description="How long a log-in (token or console session) lasts."
    )

    database_url: str | None = Field(default=None, description="Unset: records.db in the data folder.")
    admin_token: str | None = Field(default=None, description="Bootstrap admin bearer token.")
    rules_file: Path | None = Field(default=None, description="Unset: the shipped default rules.")
    inventory_file: Path | None = Field(default=None, description="Devices to register at start-up.")
    webhook_url: str | None = Field(
        default=None, description="Catch-all: told of every notification, whatever its site and class."
    )
    recipients_file: Path | None = Field(
        default=None, description="Who is told of tickets (YAML); unset: recipients.yaml in the data folder."
    )
    outbox_backoff_s: float = Field(default=5.0, gt=0, description="First wait after a failed delivery.")
    outbox_backoff_max_s: float = Field(default=900.0, gt=0, description="Longest wait between attempts.")
    outbox_give_up_s: float = Field(default=86_400.0, gt=0, description="A notification is given up after.")
    outbox_timeout_s: float = Field(default=5.0, gt=0, le=120, description="One delivery's HTTP timeout.")
    publish_alarms: bool = True
    reopen_cooldown_s: int = Field(default=3600, ge=0)
    outage_devices: int = Field(
        default=3, ge=0, description="Devices of a site offline within the window that are an outage; 0: off."
    )
    outage_window_s: int = Field(default=300, ge=1, le=86_400)
    renotify_s: int = Field(default=300, ge=1)
    escalate_emergency_s: int = Field(default=900, ge=1)
    escalate_major_s: int = Field(default=1800, ge=1)
    status_interval_s: float = Field(default=60.0, gt=0, le=3600)
    patrol_tolerance_s: int = Field(default=300, ge=0)
    patrol_grace_s: int = Field(default=900, ge=0)
    patrol_start_grace_s: int = Field(default=900, ge=0)
    timezone: str = Field(default="UTC", description="The site's time zone, for patrol plans' start times.")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (e.g. Asia/Shanghai, UTC)") from None
        return value

    @field_validator("sites", mode="before")
    @classmethod
    def _site_list(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        sites = frozenset(part.strip() for part in value.split(",") if part.strip())
        bad = sorted(site for site in sites if not SITE_OR_DEVICE_ID.fullmatch(site))
        if bad:
            raise ValueError(
                f"not site ids: {', '.join(map(repr, bad))} (expected {SITE_OR_DEVICE_ID.pattern})"
            )
        return sites or None

    @field_validator("mqtt_url")
    @classmethod
    def _valid_mqtt_url(cls, value: str | None) -> str | None:
        if value:
            MqttEndpoint(value)
        return value or None

    @field_validator(
        "influx_username", "influx_password", "database_url", "admin_token", "webhook_url", mode="before"
    )
    @classmethod
    def _empty_is_unset(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("influx_url", "webhook_url")
    @classmethod
    def _valid_http_url(cls, value: str | None) -> str | None:
        if value and urlsplit(value).scheme not in ("http", "https"):
            raise ValueError(f"{value!r}: expected http(s)://host:port")
        return value or None

    @field_validator(
        "rules_file",
        "inventory_file",
        "recipients_file",
        "mqtt_ca_file",
        "mqtt_cert_file",
        "mqtt_key_file",
        mode="before",
    )
    @classmethod
    def _empty_path_is_unset(cls, value: object) -> object:
        return value or None

    @property
    def mqtt(self) -> MqttEndpoint:
        """The broker to use; 127.0.0.1:1883 when none is configured."""
        url = self.mqtt_url or "mqtt://127.0.0.1:1883"
        return MqttEndpoint(url, self.mqtt_ca_file, self.mqtt_cert_file, self.mqtt_key_file)

    @property
    def inbox_path(self) -> Path:
        """The collector's durable buffer."""
        return self.data_dir / "inbox.db"

    @property
    def embedded_store_path(self) -> Path:
        """Readings when no InfluxDB is configured."""
        return self.data_dir / "timeseries.db"
