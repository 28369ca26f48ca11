"""API tokens: an admin issues them for people and systems."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, status

from api.auth import Caller, Role, TokenBook, allow
from api.schemas import TokenCreate, TokenIssued

router = APIRouter(prefix="/tokens", tags=["tokens"])


@router.post("", response_model=TokenIssued, status_code=status.HTTP_201_CREATED)
def issue(body: TokenCreate, request: Request, _caller: Annotated[Caller, Depends(allow())]) -> TokenIssued:
    """Issue a token with a role; it is shown only in this answer."""
    book: TokenBook = request.app.state.tokens
    return TokenIssued(name=body.name, role=body.role, token=book.issue(body.name, Role(body.role)))
