"""Devices: the directory with latest values and open alarms, registration, and a metric's history."""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, status

from api.auth import ANYONE, STAFF, Caller, allow
from api.errors import invalid, problem
from api.schemas import SITE_OR_DEVICE, DeviceCreate, DevicePublic, HistoryPoint, device_public
from api.sites import mine_or_403
from collector.stores.base import Aggregate, StoreRejected, StoreUnavailable, TimeSeriesStore
from ground.clock import as_utc, to_ms
from records.devices import DeviceDirectory
from records.models import Device
from tickets.service import TicketService

router = APIRouter(prefix="/devices", tags=["devices"])
Site = Annotated[str, Path(pattern=SITE_OR_DEVICE)]
DeviceId = Annotated[str, Path(pattern=SITE_OR_DEVICE)]


def _open_alarms(request: Request) -> dict[tuple[str, str], list[str]]:
    """Every device's active alarm rules."""
    service: TicketService = request.app.state.tickets
    found: dict[tuple[str, str], list[str]] = defaultdict(list)
    for site, device_id, rule, _class in service.active_alarm_classes():
        found[(site, device_id)].append(rule)
    return found


def _device(request: Request, caller: Caller, site: str, device_id: str) -> Device:
    """The device, or 404 when it is missing or of a site the caller does not see."""
    directory: DeviceDirectory = request.app.state.devices
    device = directory.get(site, device_id) if caller.sees(site) else None
    if device is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no device {site}/{device_id}")
    return device


def _public(request: Request, d: Device) -> DevicePublic:
    """One device with its active alarm rules."""
    service: TicketService = request.app.state.tickets
    alarms = service.alarms(active_only=True, site=d.site, device_id=d.device_id)
    return device_public(d, [a.rule for a in alarms])


@router.get("", response_model=list[DevicePublic])
def list_devices(
    request: Request,
    caller: Annotated[Caller, Depends(allow(*ANYONE))],
    site: Annotated[str | None, Query(pattern=SITE_OR_DEVICE)] = None,
) -> list[DevicePublic]:
    """Every device of the caller's sites: last seen, online, latest values and open alarms."""
    directory: DeviceDirectory = request.app.state.devices
    alarms = _open_alarms(request)
    found = caller.only_visible(directory.list(site))
    return [device_public(d, alarms.get((d.site, d.device_id), [])) for d in found]


@router.post("", response_model=DevicePublic, status_code=status.HTTP_201_CREATED)
def register(
    body: DeviceCreate, request: Request, caller: Annotated[Caller, Depends(allow(*STAFF))]
) -> DevicePublic:
    """Register a device ahead of its first message: name, location and reporting interval."""
    mine_or_403(caller, body.site)
    directory: DeviceDirectory = request.app.state.devices
    try:
        device = directory.register(body.model_dump())
    except ValueError as exc:
        raise invalid(["body", "device_type"], str(exc)) from None
    engine_hook = getattr(request.app.state, "on_register", None)
    if engine_hook:
        engine_hook(device)
    return _public(request, device)


@router.get("/{site}/{device_id}", response_model=DevicePublic)
def get_device(
    site: Site, device_id: DeviceId, request: Request, caller: Annotated[Caller, Depends(allow(*ANYONE))]
) -> DevicePublic:
    """One device."""
    return _public(request, _device(request, caller, site, device_id))


@router.get(
    "/{site}/{device_id}/history",
    response_model=list[HistoryPoint],
    responses={
        400: problem("the time-series store refused the query"),
        503: problem("the time-series store does not answer"),
    },
)
def history(
    site: Site,
    device_id: DeviceId,
    request: Request,
    caller: Annotated[Caller, Depends(allow(*ANYONE))],
    metric: Annotated[str, Query(pattern=r"^[a-z][a-z0-9_]*$")],
    start: datetime | None = None,
    end: datetime | None = None,
    every: Annotated[int | None, Query(ge=1, le=86_400, description="bucket seconds")] = None,
    aggregate: Aggregate = "mean",
) -> list[HistoryPoint]:
    """One metric of a device over a time range (default: the last hour), raw or in buckets."""
    store: TimeSeriesStore = request.app.state.store
    device = _device(request, caller, site, device_id)
    try:
        end_ms = to_ms(as_utc(end)) if end else int(time.time() * 1000) + 1
        start_ms = to_ms(as_utc(start)) if start else end_ms - 3_600_000
    except (OverflowError, OSError, ValueError):
        raise invalid(["query", "start"], "time out of range") from None
    if start_ms >= end_ms:
        raise invalid(["query", "start"], "start must be before end")
    try:
        rows = store.query(
            device.device_type,
            metric,
            start_ms,
            end_ms,
            site=site,
            device_id=device_id,
            every_s=every,
            aggregate=aggregate,
        )
    except StoreUnavailable as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"time-series store: {exc}") from None
    except StoreRejected as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"time-series store: {exc}") from None
    return [HistoryPoint(time=datetime.fromtimestamp(t / 1000, UTC), value=v) for t, v in rows]
