"""The API's error answers: their shapes, and which operation may give which, read off its dependencies."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from fastapi import APIRouter, FastAPI, HTTPException, Request, Response, status
from fastapi.dependencies.models import Dependant
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.auth import Role, admitted_roles, current_caller


class Problem(BaseModel):
    """An error other than invalid input: what went wrong, in a sentence."""

    detail: str


def invalid(loc: list[str | int], msg: str) -> HTTPException:
    """A 422 in the shape of the validation errors: `{"detail": [{"loc", "msg", "type"}]}`."""
    detail = [{"loc": loc, "msg": msg, "type": "value_error"}]
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail)


async def http_error(request: Request, exc: Exception) -> Response:
    """HTTPException as FastAPI answers it, but a body that is not UTF-8 is invalid JSON like any other: 422.

    FastAPI answers 400 to it, where a body that is UTF-8 but not JSON gets a validation error.
    """
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == status.HTTP_400_BAD_REQUEST and isinstance(exc.__cause__, UnicodeDecodeError):
        detail = [{"loc": ["body"], "msg": "the body is not JSON in UTF-8", "type": "json_invalid"}]
        return JSONResponse({"detail": detail}, status.HTTP_422_UNPROCESSABLE_CONTENT)
    return await http_exception_handler(request, exc)


RETRY_AFTER = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer", "minimum": 1}}}


def declare_errors(app: FastAPI, routers: Iterable[tuple[str, APIRouter]]) -> None:
    """Declare in the app's OpenAPI, on every operation, the errors its dependencies and body can give.

    Behind a bearer token: 401, and 429 for an address that keeps failing. A role check that
    leaves a role out: 403. An id in the path: 404. A body: 413, and 409 when it names the id
    to create. An operation declares for itself what its own code adds (a refused transition's
    409, a guard's 403 on another guard's round); validation's 422 FastAPI declares. `routers`
    are the routers included in the app, each with the prefix it was included under.
    """
    errors: dict[tuple[str, str], dict[int, dict[str, Any]]] = {}
    for prefix, router in [("", app.router), *routers]:
        for route in router.routes:
            if isinstance(route, APIRoute) and route.include_in_schema:
                for method in route.methods or ():
                    errors[(method.lower(), prefix + route.path_format)] = _errors(route)
    plain = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = plain()
        schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = Problem.model_json_schema()
        for path, item in schema["paths"].items():
            for method, operation in item.items():
                for code, entry in errors.get((method, path), {}).items():
                    operation["responses"].setdefault(str(code), entry)  # what it declares itself stays
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _errors(route: APIRoute) -> dict[int, dict[str, Any]]:
    """The error answers an operation's dependencies, path and body can give."""
    found: dict[int, dict[str, Any]] = {}
    calls = set(_calls(route.dependant))
    if current_caller in calls:
        found[401] = _problem("no valid bearer token: none, unknown, revoked or expired")
        found[429] = _problem(
            "too many failed authentications from this address; a valid token is never held back",
            headers=RETRY_AFTER,
        )
    if any((roles := admitted_roles(call)) is not None and roles != frozenset(Role) for call in calls):
        found[403] = _problem("the token's role may not do this")
    if route.dependant.path_params:
        found[404] = _problem("nothing with that id")
    if route.body_field is not None:
        found[413] = _problem("the request body is over FACILITY_MAX_BODY_BYTES")
        body = route.body_field.field_info.annotation
        if isinstance(body, type) and issubclass(body, BaseModel) and "id" in body.model_fields:
            found[409] = _problem("the id is taken")
    return found


def _problem(description: str, **extra: Any) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
        **extra,
    }


def problem(description: str, **extra: Any) -> dict[str, Any]:
    """A response an operation declares itself, with the `Problem` body (and `headers`, say)."""
    return {"model": Problem, "description": description, **extra}


def _calls(dependant: Dependant) -> Iterator[Any]:
    """Every dependency of an operation, however deep."""
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from _calls(sub)
