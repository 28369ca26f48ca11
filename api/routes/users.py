"""Staff accounts: an admin adds, lists and disables them and sets their passwords."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Request, status

from accounts.users import UserBook, UserExists, UserMissing
from api.account_schemas import USERNAME, NewPassword, UserChange, UserCreate, UserPublic, user_public
from api.auth import Caller, TokenBook, allow
from api.errors import problem

router = APIRouter(prefix="/users", tags=["users"])
Admin = Annotated[Caller, Depends(allow())]
Username = Annotated[str, Path(pattern=USERNAME)]


def _users(request: Request) -> UserBook:
    book: UserBook = request.app.state.users
    return book


def _forget_tokens(request: Request) -> None:
    """Tokens of a disabled user or a changed password stop working at once in this process."""
    tokens: TokenBook = request.app.state.tokens
    tokens.forget()


@router.post(
    "",
    response_model=UserPublic,
    status_code=status.HTTP_201_CREATED,
    responses={409: problem("a user of that name exists")},
)
def add(body: UserCreate, request: Request, _caller: Admin) -> UserPublic:
    """Add a staff account with a role, limited to `sites` when given."""
    try:
        return user_public(_users(request).add(body.username, body.password, body.role, body.sites))
    except UserExists as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None


@router.get("", response_model=list[UserPublic])
def list_users(request: Request, _caller: Admin) -> list[UserPublic]:
    """Every staff account, disabled ones included."""
    return [user_public(u) for u in _users(request).list()]


@router.get("/{username}", response_model=UserPublic)
def get_user(username: Username, request: Request, _caller: Admin) -> UserPublic:
    """One staff account."""
    try:
        return user_public(_users(request).get(username))
    except UserMissing as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None


@router.patch("/{username}", response_model=UserPublic)
def change(username: Username, body: UserChange, request: Request, _caller: Admin) -> UserPublic:
    """Change an account's role, sites or password, or disable it; a change ends its sessions."""
    book = _users(request)
    try:
        user = book.get(username)
        if body.role is not None or body.sites is not None:
            user = book.set_access(username, body.role, body.sites)
        if body.password is not None:
            user = book.set_password(username, body.password)
        if body.disabled:
            user = book.disable(username)
    except UserMissing as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    _forget_tokens(request)
    return user_public(user)


@router.delete("/{username}", response_model=UserPublic)
def delete(username: Username, request: Request, _caller: Admin) -> UserPublic:
    """Disable an account (it is kept, for the audit trails that name it)."""
    return disable(username, request, _caller)


@router.post("/{username}/disable", response_model=UserPublic)
def disable(username: Username, request: Request, _caller: Admin) -> UserPublic:
    """Disable an account: it cannot log in, and its tokens and sessions end."""
    try:
        user = _users(request).disable(username)
    except UserMissing as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    _forget_tokens(request)
    return user_public(user)


@router.put("/{username}/password", response_model=UserPublic)
def set_password(username: Username, body: NewPassword, request: Request, _caller: Admin) -> UserPublic:
    """Set an account's password; its tokens and sessions end, so it logs in again."""
    try:
        user = _users(request).set_password(username, body.password)
    except UserMissing as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    _forget_tokens(request)
    return user_public(user)
