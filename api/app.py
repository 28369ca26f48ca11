"""The FastAPI application: routers under /api/v1, plus /health and /metrics."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from fastapi import APIRouter, FastAPI, Request, status
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlalchemy import func, select
from starlette.exceptions import HTTPException as StarletteHTTPException

from accounts.lockout import LoginLocks
from accounts.users import UserBook
from api.auth import TokenBook
from api.docs import serve_docs
from api.errors import declare_errors, http_error
from api.health import Health
from api.health import problems as health_problems
from api.limits import BodyLimit
from api.logins import Logins
from api.routes import (
    alarms,
    auth,
    dead_letters,
    devices,
    maintenance,
    maintenance_windows,
    notifications,
    patrol,
    reports,
    tickets,
    tokens,
    users,
)
from api.throttle import AuthFailures
from collector.stores.base import TimeSeriesStore
from ground.settings import Settings
from maintenance.service import MaintenanceService
from patrol.service import PatrolService
from quality.records import QualityRecords
from records.db import Database
from records.devices import DeviceDirectory
from records.models import Alarm, Ticket
from tickets.lifecycle import Status
from tickets.outbox import Outbox
from tickets.recipients import RecipientBook
from tickets.recipientsfile import RecipientsFile
from tickets.service import TicketService


@dataclass
class ServiceContext:
    """What the API serves from; `facility serve` builds it."""

    settings: Settings
    db: Database
    tickets: TicketService
    devices: DeviceDirectory
    store: TimeSeriesStore
    tokens: TokenBook
    # Counters of the running pipeline (collector, rules), for /metrics and /health.
    counters: Callable[[], dict[str, float]] = field(default=lambda: {})
    on_register: Callable[..., None] | None = None
    patrol: PatrolService | None = None
    maintenance: MaintenanceService | None = None
    # The notifications' outbox and who is told; None: read from the records and the data folder.
    outbox: Outbox | None = None
    recipients: RecipientsFile | None = None
    auth_failures: AuthFailures = field(default_factory=AuthFailures)
    login_locks: LoginLocks = field(default_factory=LoginLocks)

    def users(self) -> UserBook:
        """The staff accounts."""
        return UserBook(self.db)

    def logins(self) -> Logins:
        """Log-ins over these accounts and tokens."""
        return Logins(self.users(), self.tokens, self.login_locks, self.settings.session_hours)


def create_app(ctx: ServiceContext) -> FastAPI:
    """The application over one service context."""
    app = FastAPI(
        title="facility",
        version="1",
        description="IoT facility monitoring and maintenance for property management.",
        # /docs is served from the product's own copy of Swagger UI (buildings often have no internet).
        docs_url=None,
        redoc_url=None,
    )
    serve_docs(app)
    app.state.settings = ctx.settings
    app.state.tickets = ctx.tickets
    app.state.devices = ctx.devices
    app.state.store = ctx.store
    app.state.tokens = ctx.tokens
    app.state.on_register = ctx.on_register
    app.state.patrol = ctx.patrol
    app.state.maintenance = ctx.maintenance
    outbox = ctx.outbox or Outbox(ctx.db, RecipientBook)
    app.state.outbox = outbox
    app.state.recipients = ctx.recipients or RecipientsFile(
        ctx.settings.recipients_file or ctx.settings.data_dir / "recipients.yaml"
    )
    app.state.quality = QualityRecords(ctx.db, ZoneInfo(ctx.settings.timezone), ctx.tickets.clock)
    app.state.auth_failures = ctx.auth_failures
    app.state.users = ctx.users()
    app.state.logins = ctx.logins()
    v1 = APIRouter(prefix="/api/v1")
    modules = (
        auth,
        tickets,
        alarms,
        devices,
        dead_letters,
        tokens,
        users,
        patrol,
        maintenance,
        maintenance_windows,
        notifications,
        reports,
    )
    routers = [module.router for module in modules]
    for router in routers:
        v1.include_router(router)
    app.include_router(v1)
    app.add_middleware(BodyLimit, max_bytes=ctx.settings.max_body_bytes)
    app.add_exception_handler(StarletteHTTPException, http_error)
    declare_errors(app, [(v1.prefix, router) for router in routers])

    @app.get(
        "/health",
        tags=["operations"],
        response_model=None,
        responses={
            200: {"model": Health, "description": "all is well"},
            503: {"model": Health, "description": "something is wrong: see `problems`"},
        },
    )
    def health() -> JSONResponse:
        """200 when the broker, the time-series store and the records database answer; else 503."""
        counters = ctx.counters()
        found = health_problems(counters, ctx.db)
        if found:
            body = {"status": "unhealthy", "problems": found, **counters}
            return JSONResponse(body, status.HTTP_503_SERVICE_UNAVAILABLE)
        return JSONResponse({"status": "ok", **counters})

    @app.get("/metrics", response_class=PlainTextResponse, tags=["operations"])
    def metrics(request: Request) -> str:
        """Prometheus text format."""
        lines: list[str] = []
        for name, value in sorted(ctx.counters().items()):
            if isinstance(value, bool | int | float):
                lines.append(f"facility_{name} {float(value):g}")
        with ctx.db.session() as s:
            for severity, count in s.execute(
                select(Alarm.severity, func.count()).where(Alarm.active.is_(True)).group_by(Alarm.severity)
            ):
                lines.append(f'facility_alarms_active{{class="{severity}"}} {count}')
            open_statuses = [Status.OPEN.value, Status.ACKNOWLEDGED.value, Status.IN_PROGRESS.value]
            for severity, count in s.execute(
                select(Ticket.severity, func.count())
                .where(Ticket.status.in_(open_statuses))
                .group_by(Ticket.severity)
            ):
                lines.append(f'facility_tickets_open{{class="{severity}"}} {count}')
        # The outbox: pending, delivered and given up (`failed`), and how long the oldest has waited.
        for state, count in outbox.counts().items():
            lines.append(f'facility_notifications{{state="{state.value}"}} {count}')
        oldest = outbox.oldest_pending()
        age = 0.0 if oldest is None else max(0.0, (outbox.clock() - oldest).total_seconds())
        lines.append(f"facility_notifications_oldest_pending_seconds {age:g}")
        return "\n".join(lines) + "\n"

    return app
