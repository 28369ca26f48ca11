"""Gateway fixtures: the simulated pump room PLC on a free port, and gateways run in a thread of the test."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from gateway.app import Serve
from gateway.app import run as run_gateway
from gateway.config import GatewayConfig, parse_config
from gateway.simulators.pump_room import PumpRoomPlc
from ground.settings import Settings
from tests.conftest import make_settings
from tests.servers import Mosquitto, free_port

PUMP_ROOM = Path(__file__).resolve().parents[2] / "gateway" / "simulators" / "pump_room.yaml"


@pytest.fixture
def plc() -> Iterator[PumpRoomPlc]:
    """The pump room's PLC, a real Modbus TCP server on a free port."""
    server = PumpRoomPlc(free_port())
    server.start()
    yield server
    server.stop()


def pump_room_config(port: int, poll_s: float = 0.2, **top: Any) -> GatewayConfig:
    """The shipped pump room config, pointed at the test's PLC and polled fast."""
    import yaml

    doc = yaml.safe_load(PUMP_ROOM.read_text())
    doc["modbus"][0].update(port=port, poll_s=poll_s, timeout_s=0.5)
    doc.update(top)
    return parse_config(doc)


class RunningGateway:
    """`gateway.app.run` on an event loop in a thread of its own; `stop` ends it and waits."""

    def __init__(self, config: GatewayConfig, settings: Settings, serve: Serve | None = None) -> None:
        self.loop = asyncio.new_event_loop()
        self.stop_event = asyncio.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(config, settings, serve), daemon=True)
        self.thread.start()

    def _run(self, config: GatewayConfig, settings: Settings, serve: Serve | None) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(run_gateway(config, settings, self.stop_event, serve))
        except BaseException as exc:
            self.error = exc
        finally:
            self.loop.close()

    def stop(self) -> None:
        """Stop the gateway and wait for it."""
        if self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(30)
        assert not self.thread.is_alive(), "the gateway did not stop"


@pytest.fixture
def start_gateway(tmp_path: Path) -> Iterator[Callable[..., RunningGateway]]:
    """Start gateways publishing to a broker, spooling under tmp_path/gateway; all stop at the end."""
    started: list[RunningGateway] = []

    def start(config: GatewayConfig, mqtt_url: str, serve: Serve | None = None) -> RunningGateway:
        settings = make_settings(tmp_path, data_dir=tmp_path / "gateway", mqtt_url=mqtt_url)
        running = RunningGateway(config, settings, serve)
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()
    for running in started:
        if running.error is not None:
            raise running.error


class Gate:
    """A TCP relay to the broker that the test opens and shuts: the gateway's way to it.

    A restarted test broker has no session of the collector's until the collector is back, so the
    gateway is let through again only then; whatever it sent before would have had no subscriber.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.open = threading.Event()
        self.open.set()
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        """The broker URL through the gate."""
        return f"mqtt://127.0.0.1:{self.port}"

    def shut(self) -> None:
        """Drop every relayed connection and refuse new ones."""
        self.open.clear()
        with self._lock:
            for conn in self._conns:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
                conn.close()
            self._conns.clear()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                if not self.open.is_set():
                    raise OSError("shut")
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for s in (source, sink):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        """Stop relaying."""
        self.shut()
        self._listener.close()


@pytest.fixture
def gate(mosquitto: Mosquitto) -> Iterator[Gate]:
    """A relay to this test's mosquitto."""
    relay = Gate(mosquitto.port)
    yield relay
    relay.close()


class Watcher:
    """A subscriber to every facility topic keeping each topic's latest payload (retained ones too)."""

    def __init__(self, url: str) -> None:
        self.latest: dict[str, dict[str, Any]] = {}
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"watcher-{free_port()}")
        self.client.on_connect = lambda c, *_: c.subscribe("facility/#", qos=1)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", int(url.rsplit(":", 1)[1]))
        self.client.loop_start()

    def _on_message(self, _c: object, _u: object, message: mqtt.MQTTMessage) -> None:
        self.latest[message.topic] = json.loads(message.payload)

    def state(self, topic: str) -> str | None:
        """The latest `state` on a status topic."""
        return self.latest.get(topic, {}).get("state")

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def watcher(mosquitto: Mosquitto) -> Iterator[Watcher]:
    """A subscriber to this test's mosquitto."""
    w = Watcher(mosquitto.url)
    yield w
    w.close()
