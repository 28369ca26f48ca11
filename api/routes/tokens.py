"""API tokens: an admin issues, lists and revokes them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, status

from api.auth import Caller, Role, TokenBook, TokenMissing, allow
from api.schemas import MAX_ID, TokenCreate, TokenIssued, TokenPublic, token_public

router = APIRouter(prefix="/tokens", tags=["tokens"])
Admin = Annotated[Caller, Depends(allow())]


def _book(request: Request) -> TokenBook:
    book: TokenBook = request.app.state.tokens
    return book


@router.post("", response_model=TokenIssued, status_code=status.HTTP_201_CREATED)
def issue(body: TokenCreate, request: Request, _caller: Admin) -> TokenIssued:
    """Issue a token with a role and an optional expiry; it is shown only in this answer."""
    token, row = _book(request).issue(body.name, Role(body.role), body.expiry())
    return TokenIssued(token=token, **token_public(row).model_dump())


@router.get("", response_model=list[TokenPublic])
def list_tokens(
    request: Request,
    _caller: Admin,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> list[TokenPublic]:
    """Issued tokens, newest first, with when each was created, expires and was revoked."""
    return [token_public(t) for t in _book(request).tokens(limit, offset)]


@router.delete("/{token_id}", response_model=TokenPublic)
def revoke(token_id: Annotated[int, Path(ge=1, le=MAX_ID)], request: Request, _caller: Admin) -> TokenPublic:
    """Revoke a token: it is refused from now on. Revoking it again changes nothing."""
    try:
        return token_public(_book(request).revoke(token_id))
    except TokenMissing as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
