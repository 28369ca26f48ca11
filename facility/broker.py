"""An MQTT broker inside this process (amqtt), for the demo when no broker is configured.

Enough for a demo (about a thousand QoS 1 messages a second); production uses Mosquitto or a cluster.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

log = logging.getLogger(__name__)


class EmbeddedBroker:
    """Runs an amqtt broker on its own event loop in a background thread."""

    def __init__(self, host: str = "127.0.0.1", port: int = 1883) -> None:
        self.host, self.port = host, port
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="mqtt-broker", daemon=True)
        self._broker: Any = None

    @property
    def url(self) -> str:
        """Where clients connect."""
        return f"mqtt://{self.host}:{self.port}"

    def start(self) -> None:
        """Start listening; raises if the port is taken."""
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=30)

    async def _start(self) -> None:
        from amqtt.broker import Broker

        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "plugins": {
                # A client that gives any user name is authenticated and not anonymous; amqtt keeps
                # persistent sessions (queued QoS 1 messages) only for such clients.
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": False},
            },
        }
        self._broker = Broker(config)
        await self._broker.start()

    def stop(self) -> None:
        """Stop the broker and its loop."""
        if self._broker is not None:
            future = asyncio.run_coroutine_threadsafe(self._broker.shutdown(), self._loop)
            try:
                future.result(timeout=10)
            except Exception:
                log.exception("embedded broker did not shut down cleanly")
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
