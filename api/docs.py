"""The API's documentation page, `/docs`, served with Swagger UI's files from the product, not a CDN.

A building's network often has no way out: a page that loads its script from the internet would
stay blank there.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_URL = "/static/api"
SWAGGER = f"{STATIC_URL}/swagger"


def serve_docs(app: FastAPI) -> None:
    """Serve `/docs` with Swagger UI from the product's own files; for an app made with docs_url=None."""
    app.mount(STATIC_URL, StaticFiles(directory=STATIC_DIR), name="api-static")
    openapi_url = app.openapi_url
    if openapi_url is None:  # no schema to show
        return
    redirect_url = app.swagger_ui_oauth2_redirect_url

    async def swagger_ui_html(request: Request) -> HTMLResponse:
        # Behind a proxy that serves the API under a prefix, every URL the page asks for has it too.
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{SWAGGER}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{SWAGGER}/swagger-ui.css",
            swagger_favicon_url=f"{root}{SWAGGER}/favicon-32x32.png",
            oauth2_redirect_url=root + redirect_url if redirect_url else None,
            init_oauth=app.swagger_ui_init_oauth,
            swagger_ui_parameters=app.swagger_ui_parameters,
        )

    app.add_route("/docs", swagger_ui_html, include_in_schema=False)
    if redirect_url:

        async def swagger_ui_redirect(_request: Request) -> HTMLResponse:
            return get_swagger_ui_oauth2_redirect_html()

        app.add_route(redirect_url, swagger_ui_redirect, include_in_schema=False)
