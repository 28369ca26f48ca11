"""`facility demo`: broker, collector and simulators in one process, so the product runs on a laptop."""

from __future__ import annotations

import logging
import socket
import threading
import time

from collector.app import Collector, describe_store
from collector.stores.factory import open_store
from facility.broker import EmbeddedBroker
from facility.settings import Settings
from simulators import publisher
from simulators.publisher import SimulationPlan

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


def run(settings: Settings, plan: SimulationPlan, stop: threading.Event, port: int = 1883) -> None:
    """Run the demo until `stop` is set or the plan's duration is over."""
    broker = None
    if settings.mqtt_url is None:
        host = "127.0.0.1"
        if not _port_free(host, port):
            port = _free_port(host)
        broker = EmbeddedBroker(host, port)
        broker.start()
        settings = settings.model_copy(update={"mqtt_url": f"mqtt://{DEMO_USER}@{host}:{port}"})
    endpoint = settings.mqtt
    store = open_store(settings)
    collector = Collector(settings, store)
    print("facility demo")
    print(f"  broker     {'embedded (amqtt) ' if broker else ''}{endpoint!r}")
    print(f"  collector  → {describe_store(settings)}")
    print(f"  buffer     {settings.inbox_path}")
    print(f"  simulators {plan.sites} site(s), {plan.rate:g} reports/s, seed {plan.seed}")
    print("  look:      facility query elevator floor --minutes 5    (in another terminal)")
    print("  stop:      Ctrl-C")
    collector_stop = threading.Event()
    collector_thread = threading.Thread(target=collector.run, args=(collector_stop,), name="collector")
    collector_thread.start()
    sim_thread = threading.Thread(
        target=publisher.run, args=(endpoint, plan, stop), name="simulators", daemon=True
    )
    sim_thread.start()
    try:
        while sim_thread.is_alive() and not stop.wait(10):
            print(
                f"  received {collector.received}, stored {collector.writer.stored},"
                f" dead letters {collector.dead_letters}, duplicates {collector.tracker.duplicates},"
                f" lost {collector.tracker.lost}",
                flush=True,
            )
    finally:
        stop.set()
        sim_thread.join(timeout=15)
        _wait_quiet(collector)
        collector_stop.set()
        collector_thread.join(timeout=30)
        store.close()
        if broker:
            broker.stop()
        print(f"stopped; {collector.writer.stored} readings stored by {describe_store(settings)}")


def _wait_quiet(collector: Collector, timeout_s: float = 5.0) -> None:
    """Give the collector a moment to take what the simulators just sent."""
    deadline = time.monotonic() + timeout_s
    last = -1
    while time.monotonic() < deadline and collector.received != last:
        last = collector.received
        time.sleep(0.5)
