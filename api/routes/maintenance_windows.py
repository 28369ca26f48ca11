"""Maintenance windows: alarms of the devices people work on are held, not ticketed."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/maintenance/windows", tags=["maintenance"])
