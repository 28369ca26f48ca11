"""Server-sent events: the console hears that tickets or patrols changed, and refreshes what shows them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

import anyio.to_thread
from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import func, select

from console.session import Visitor, signed_in
from records.db import Database
from records.models import AuditEntry, PatrolRound, PatrolScan, PatrolVisit
from records.states import VisitStatus

router = APIRouter()
POLL_S = 1.0
HEARTBEAT_S = 15.0
# A stream ends after this long and the browser opens a new one: a session that ended stops hearing.
STREAM_S = 600.0


def versions(db: Database) -> tuple[int, tuple[int, int, int]]:
    """What changes when tickets change (the audit trail grows) and when patrols do (scans, visits, rounds).

    Read from the records, so changes made by another process (a collector of its own) are heard too.
    """
    with db.read() as s:
        tickets = s.scalar(select(func.max(AuditEntry.id))) or 0
        scans = s.scalar(select(func.max(PatrolScan.id))) or 0
        visits = s.scalar(
            select(func.count()).select_from(PatrolVisit).where(PatrolVisit.status != VisitStatus.PENDING)
        )
        rounds = s.scalar(
            select(func.count()).select_from(PatrolRound).where(PatrolRound.ended_at.is_not(None))
        )
    return tickets, (scans, visits or 0, rounds or 0)


async def _stream(request: Request, db: Database, poll_s: float) -> AsyncIterator[str]:
    last = await anyio.to_thread.run_sync(versions, db)
    yield "retry: 2000\n\n"
    waited = since_beat = 0.0
    while waited < STREAM_S and not await request.is_disconnected():
        await asyncio.sleep(poll_s)
        waited += poll_s
        since_beat += poll_s
        now = await anyio.to_thread.run_sync(versions, db)
        if now[0] != last[0]:
            yield f"event: tickets\ndata: {now[0]}\n\n"
        if now[1] != last[1]:
            yield "event: patrols\ndata: changed\n\n"
        if now != last:
            last, since_beat = now, 0.0
        elif since_beat >= HEARTBEAT_S:
            since_beat = 0.0
            yield ": still here\n\n"


@router.get("/events")
async def events(request: Request, _visitor: Annotated[Visitor, Depends(signed_in)]) -> StreamingResponse:
    """`tickets` and `patrols` events as they change; a comment every 15 s keeps proxies from closing it."""
    db: Database = request.app.state.db
    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(_stream(request, db, POLL_S), media_type="text/event-stream", headers=headers)
