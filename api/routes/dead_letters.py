"""Dead letters: messages and points set aside, with the reason."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status

from api.auth import STAFF, Caller, allow
from collector.inbox import Inbox

router = APIRouter(prefix="/dead-letters", tags=["dead letters"])


@router.get("")
def list_dead_letters(
    request: Request,
    caller: Annotated[Caller, Depends(allow(*STAFF))],
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> list[dict[str, Any]]:
    """The newest dead letters: when, at which stage, topic, reason and the payload's first 1 KiB.

    A dead letter may name no site, or a false one, so only callers of every site read them.
    """
    if caller.sites is not None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "dead letters are read by users of every site")
    inbox = Inbox(request.app.state.settings.inbox_path)
    try:
        return inbox.dead_letters(limit, offset)
    finally:
        inbox.close()
