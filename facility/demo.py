"""`facility demo`: broker, collector, rules, tickets, API and simulators in one process, on a laptop."""

from __future__ import annotations

import dataclasses
import logging
import secrets
import socket
import threading
import time

import uvicorn
from sqlalchemy.exc import IntegrityError

from accounts.roles import Role
from accounts.users import UserBook, UserExists
from collector.app import describe_store
from facility.broker import EmbeddedBroker
from facility.demo_gateway import SITE as SECOND_SITE
from facility.demo_gateway import DemoGateway
from facility.demo_staff import DemoStaff
from facility.service import Service
from ground.settings import Settings
from maintenance.planfile import EXAMPLE as EXAMPLE_PLANS
from simulators import publisher
from simulators.inventory import inventory
from simulators.publisher import SimulationPlan
from tickets.lifecycle import Status
from tickets.service import TicketFilter

log = logging.getLogger(__name__)

# amqtt keeps persistent sessions only for clients that give a user name.
DEMO_USER = "demo"


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex((host, port)) != 0


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _port(host: str, wanted: int) -> int:
    return wanted if _port_free(host, wanted) else _free_port(host)


def run(
    settings: Settings,
    plan: SimulationPlan,
    stop: threading.Event,
    port: int = 1883,
    api_port: int = 8000,
    gateway: bool = False,
) -> None:
    """Run the demo until `stop` is set or the plan's duration is over."""
    host = "127.0.0.1"
    broker = None
    if settings.mqtt_url is None:
        broker = EmbeddedBroker(host, _port(host, port))
        broker.start()
        settings = settings.model_copy(update={"mqtt_url": f"mqtt://{DEMO_USER}@{host}:{broker.port}"})
    if settings.admin_token is None:
        settings = settings.model_copy(update={"admin_token": secrets.token_urlsafe(16)})
    api_port = _port(host, api_port)
    service = Service(settings)
    service.start()
    config = uvicorn.Config(
        service.app(), host=host, port=api_port, log_level="warning", timeout_graceful_shutdown=3
    )
    server = uvicorn.Server(config)
    api_thread = threading.Thread(target=server.run, name="api", daemon=True)
    api_thread.start()
    service.wait_ready()
    _register_inventory(service, plan)
    _load_maintenance_plans(service)
    second_site = DemoGateway(settings, _free_port(host), _free_port(host)) if gateway else None
    if second_site is not None:
        second_site.register(service.devices)
        second_site.start()
    url = f"http://{host}:{api_port}"
    print("facility demo", flush=True)
    print(f"  broker     {'embedded (amqtt) ' if broker else ''}{settings.mqtt!r}")
    print(f"  collector  → {describe_store(settings)}; buffer {settings.inbox_path}")
    print(f"  records    {service.db.engine.url.render_as_string(hide_password=True)}")
    print(
        f"  simulators {plan.sites} site(s), {plan.rate:g} reports/s, seed {plan.seed}, "
        f"{plan.fault_rate_per_h:g} faults per device per hour"
    )
    if second_site is not None:
        print(
            f"  gateway    {SECOND_SITE}: pump room PLC (Modbus TCP :{second_site.plc.port}) and a fire"
            f" panel (GB/T 26875.3 :{second_site.fire_port}) → gateway → broker"
        )
    print(f"  console    {url}/   log in as one of:")
    for name, role, password in _demo_accounts(service):
        print(f"             {name:<11} {password}   ({role.value})")
    print(f"  quality    {url}/reports/monthly   (facility report --site S --month YYYY-MM --pdf FILE)")
    print(f"  API        {url}/api/v1   (OpenAPI: {url}/docs)")
    print(f"  token      {settings.admin_token}")
    print(f'  try        curl -H "Authorization: Bearer {settings.admin_token}" {url}/api/v1/tickets')
    print("  stop       Ctrl-C", flush=True)
    sim_stop = threading.Event()
    # The demo keeps the time itself: simulators left to end on their own would say goodbye (a
    # retained `offline` each) while the service still listens, and open a ticket per device.
    endless = dataclasses.replace(plan, duration_s=None)
    sim_thread = threading.Thread(
        target=publisher.run, args=(settings.mqtt, endless, sim_stop), name="simulators", daemon=True
    )
    sim_thread.start()
    collector = service.collector
    staff = DemoStaff(service.tickets, sorted({d.site for d in service.devices.list(None)}))
    ends = time.monotonic() + plan.duration_s if plan.duration_s else float("inf")
    try:
        while sim_thread.is_alive() and not stop.wait(min(10.0, max(0.0, ends - time.monotonic()))):
            if time.monotonic() >= ends:
                break
            try:
                staff.step()
            except Exception:
                log.exception("the demo's staff could not work the tickets")
            open_tickets = len(service.tickets.list(TicketFilter(status=Status.OPEN, limit=1000)))
            print(
                f"  received {collector.received}, stored {collector.writer.stored},"
                f" dead letters {collector.dead_letters}, lost {collector.tracker.lost},"
                f" alarm events {service.pipeline.alarm_events}, open tickets {open_tickets}",
                flush=True,
            )
    finally:
        _wait_quiet(service)
        # The service stops before the simulated devices: their goodbye (a retained `offline`
        # status each) is not a fault of the demo's site.
        server.should_exit = True
        api_thread.join(timeout=10)
        service.stop()
        if second_site is not None:
            second_site.stop()
        sim_stop.set()
        sim_thread.join(timeout=15)
        if broker:
            broker.stop()
        print(f"stopped; {collector.writer.stored} readings stored by {describe_store(settings)}")


def _register_inventory(service: Service, plan: SimulationPlan) -> None:
    """Register every simulated device with its place, so the tickets of its alarms say where to go."""
    # Registering again, as a demo restarted on the same data folder does, updates the rows in place.
    placements = inventory(plan)
    try:
        for placement in placements:
            try:
                device = service.devices.register(placement.fields())
            except IntegrityError:
                # The directory wrote the device's row since the look-up (its retained status
                # arrived first): this time the row is updated.
                device = service.devices.register(placement.fields())
            service.register(device)
    except Exception:
        # Raised here, before the clean stop is armed, it would leave the service's threads running.
        log.exception("could not register the simulated devices; their tickets will name no location")
        return
    log.info("registered %d simulated devices with their places", len(placements))


def _load_maintenance_plans(service: Service) -> None:
    """The shipped example plans for the simulated site: due when first loaded, kept across restarts."""
    try:
        contractors, plans, new = service.maintenance.load_file(EXAMPLE_PLANS)
    except Exception:
        log.exception("could not load the example maintenance plans")
        return
    log.info(
        "maintenance: %d contractors and %d plans (%d new) from %s", contractors, plans, new, EXAMPLE_PLANS
    )


def _demo_accounts(service: Service) -> list[tuple[str, Role, str]]:
    """One account per role, named for it, with a new password each run (made, or reset if there)."""
    book = UserBook(service.db)
    accounts = []
    for role in Role:
        name, password = role.value, secrets.token_urlsafe(9)
        try:
            book.add(name, password, role)
        except UserExists:
            book.set_password(name, password)
        accounts.append((name, role, password))
    return accounts


def _wait_quiet(service: Service, timeout_s: float = 5.0) -> None:
    """Give the collector a moment to take what the simulators just sent."""
    deadline = time.monotonic() + timeout_s
    last = -1
    while time.monotonic() < deadline and service.collector.received != last:
        last = service.collector.received
        time.sleep(0.5)
