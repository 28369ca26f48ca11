"""What a caller limited to sites meets: another site's records are not there, and changes to it refused."""

from __future__ import annotations

from fastapi import HTTPException, status

from accounts.roles import Caller


def seen_or_404(caller: Caller, site: str, what: str) -> None:
    """404 for a record of a site the caller does not see, as if it were not there."""
    if not caller.sees(site):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no {what}")


def mine_or_403(caller: Caller, site: str) -> None:
    """403 for a change to a site the caller is not limited to."""
    if not caller.sees(site):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"site {site} is not one of yours")
