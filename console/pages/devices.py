"""Devices by site, building and floor: online or not, last seen, latest values, active alarms."""

from __future__ import annotations

from collections import defaultdict
from itertools import groupby
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.responses import HTMLResponse

from accounts.roles import Role
from console.session import Visitor, signed_in
from console.web import render
from records.devices import DeviceDirectory, online
from records.models import Device
from rules.rule import OFFLINE
from tickets.service import TicketService

router = APIRouter()


def reads_devices(visitor: Visitor) -> bool:
    """The front desk keeps to occupants' reports; everyone else sees devices."""
    return visitor.role is not Role.FRONT_DESK


def _place(d: Device) -> tuple[str, str, str]:
    return (d.site, d.building or "", d.floor or "")


@router.get("/devices", response_class=HTMLResponse)
def devices_page(request: Request, visitor: Annotated[Visitor, Depends(signed_in)]) -> HTMLResponse:
    """Every device of the visitor's sites, grouped by where it is."""
    return render(request, "devices.html", visitor, **_devices(request, visitor))


@router.get("/devices/rows", response_class=HTMLResponse)
def devices_rows(request: Request, visitor: Annotated[Visitor, Depends(signed_in)]) -> HTMLResponse:
    """The device groups alone, for a refresh."""
    return render(request, "devices_rows.html", visitor, **_devices(request, visitor))


def _devices(request: Request, visitor: Visitor) -> dict[str, Any]:
    if not reads_devices(visitor):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the front desk does not read devices")
    directory: DeviceDirectory = request.app.state.devices
    service: TicketService = request.app.state.tickets
    alarms: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    for site, device_id, rule, severity in service.active_alarm_classes():
        alarms[(site, device_id)].append((rule, severity))
    found = sorted(visitor.caller.only_visible(directory.list(None)), key=lambda d: (*_place(d), d.device_id))
    groups = [(place, list(items)) for place, items in groupby(found, key=_place)]
    return {
        "groups": groups,
        "alarms": alarms,
        "online": {
            d.id: online(d.last_seen is not None, any(r == OFFLINE for r, _ in alarms[(d.site, d.device_id)]))
            for d in found
        },
    }
