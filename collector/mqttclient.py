"""paho's Client with read-ahead: one recv() system call per 64 KiB instead of three or four per message.

paho reads each packet's fixed header a byte at a time, each read a system call, and handles one
packet per select(); at thousands of messages a second that is most of the receive path. Here
`_sock_recv` serves those small reads from a buffer filled 64 KiB at a time, and `loop_read`
keeps going while the buffer holds data (select() cannot see it). Both are paho internals, stable
through the 2.x series that pyproject.toml pins; the ingest tests run every message through it.
"""

from __future__ import annotations

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode

READ_AHEAD_BYTES = 65_536


class ReadAheadClient(mqtt.Client):
    """A paho Client that buffers socket reads."""

    _read_buffer = b""
    _read_pos = 0

    def _sock_recv(self, bufsize: int) -> bytes:
        if self._read_pos >= len(self._read_buffer):
            data = super()._sock_recv(READ_AHEAD_BYTES)  # BlockingIOError when nothing is there
            if not data:
                return data  # connection closed
            self._read_buffer, self._read_pos = data, 0
        pos = self._read_pos
        chunk = self._read_buffer[pos : pos + bufsize]
        self._read_pos = pos + len(chunk)
        return chunk

    def _sock_close(self) -> None:
        # What was read ahead belongs to the old connection.
        self._read_buffer, self._read_pos = b"", 0
        super()._sock_close()

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        rc = super().loop_read(max_packets)
        while rc == MQTTErrorCode.MQTT_ERR_SUCCESS and self._read_pos < len(self._read_buffer):
            rc = super().loop_read(max_packets)
        return rc
