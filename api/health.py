"""/health: 200 when the broker, the time-series store and the records database all answer, else 503."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from records.db import Database


class Health(BaseModel):
    """The service's state: what is wrong, if anything, and the pipeline's counters beside it."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"additionalProperties": {"type": "number"}})

    status: Literal["ok", "unhealthy"]
    problems: dict[str, str] | None = Field(
        default=None, description="what is wrong, by part: mqtt, store, records"
    )


def problems(counters: Mapping[str, float], db: Database) -> dict[str, str]:
    """What is wrong now, by part; empty when all is well."""
    found: dict[str, str] = {}
    # A counter the service does not report (an API without a pipeline) is not a problem.
    if counters.get("mqtt_connected", 1.0) == 0:
        found["mqtt"] = "not connected to the MQTT broker; readings wait there until it is back"
    if counters.get("store_up", 1.0) == 0:
        found["store"] = "the time-series store does not answer; readings wait in the buffer on disk"
    try:
        with db.read() as s:
            s.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        found["records"] = f"the records database does not answer ({type(exc).__name__})"
    return found
