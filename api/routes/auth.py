"""Log-in and log-out: staff exchange a user name and password for a bearer token."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from accounts.roles import Role
from api.account_schemas import LoggedIn, Login
from api.errors import RETRY_AFTER, problem
from api.logins import LoginFailed, LoginLocked, Logins

router = APIRouter(prefix="/auth", tags=["auth"])
_bearer = HTTPBearer(auto_error=False)


def logins(request: Request) -> Logins:
    """The application's log-ins."""
    found: Logins = request.app.state.logins
    return found


def client_address(request: Request) -> str:
    """The address a request came from, as the lock on guessing counts it."""
    return request.client.host if request.client else "unknown"


@router.post(
    "/login",
    response_model=LoggedIn,
    responses={
        401: problem("wrong user name or password"),
        429: problem(
            "5 failed log-ins for this user from this address: locked for 15 minutes", headers=RETRY_AFTER
        ),
    },
)
def login(body: Login, request: Request) -> LoggedIn:
    """A bearer token for the user's role and sites, valid for FACILITY_SESSION_HOURS."""
    try:
        session = logins(request).log_in(body.username, body.password, client_address(request))
    except LoginLocked as exc:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS, str(exc), headers={"Retry-After": str(exc.retry_after_s)}
        ) from None
    except LoginFailed as exc:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(exc)) from None
    user = session.user
    return LoggedIn(
        access_token=session.token,
        role=Role(user.role),
        expires_at=session.expires_at,
        username=user.username,
        sites=list(user.sites),
    )


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
def logout(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> None:
    """Revoke the bearer token of this request; without one, nothing happens."""
    if credentials is not None:
        logins(request).log_out(credentials.credentials)
