"""paho's Client with a bulk receive path: 64 KiB a read, every PUBLISH in it handed over in one call.

paho reads a packet's fixed header a byte at a time and builds an MQTTMessage per PUBLISH, matches
its topic against callbacks nobody registered and takes two locks on the way to `on_message`; at
tens of thousands of messages a second that was a third of the collector's time. Here one recv()
fills a buffer, every complete PUBLISH of QoS 0 or 1 in it is cut out in one pass and handed to
`on_publishes` as a list of plain tuples, and every other packet (CONNACK, SUBACK, PINGRESP, a
PUBLISH of QoS 2) goes to paho's own handler as before. `ack_many` sends a batch's PUBACKs as one
write. Both lean on paho internals (`_packet_read`, `_in_packet`, `_packet_handle`,
`_packet_queue`), stable through the 2.x series that pyproject.toml pins; the ingest tests run
every message through them.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable, Sequence
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.exception import MalformedPacket

from ground.clock import now_ms

READ_AHEAD_BYTES = 65_536
_PUBLISH = 0x30
_PUBACK = 0x40

# (topic, payload, mid, qos, received_ms, retain): a message as it came off the wire.
Publish = tuple[str, bytes, int, int, int, bool]
PublishHandler = Callable[[list[Publish]], None]


def _fresh_in_packet() -> Any:
    return {
        "command": 0,
        "have_remaining": 0,
        "remaining_count": [],
        "remaining_mult": 1,
        "remaining_length": 0,
        "packet": bytearray(b""),
        "to_process": 0,
        "pos": 0,
    }


def _topic(raw: bytes) -> str:
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return repr(raw)  # refused by the contract's topic check, and kept readable in the dead letter


class ReadAheadClient(mqtt.Client):
    """A paho Client that reads in bulk and hands PUBLISH packets over a read at a time."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The start of a packet whose end has not arrived yet, and how long that packet is in all
        # (0: not known yet). A bytearray, so a large packet arriving over many reads costs one
        # copy of each read, not one of everything read before it.
        self._rest = bytearray()
        self._need = 0
        self.on_publishes: PublishHandler | None = None

    def _packet_read(self) -> MQTTErrorCode:
        handler = self.on_publishes
        if handler is None or self._in_packet["command"]:
            return super()._packet_read()
        try:
            data = self._sock_recv(READ_AHEAD_BYTES)
        except BlockingIOError:
            return MQTTErrorCode.MQTT_ERR_AGAIN
        except OSError:
            return MQTTErrorCode.MQTT_ERR_CONN_LOST
        if not data:
            return MQTTErrorCode.MQTT_ERR_CONN_LOST
        with self._msgtime_mutex:
            self._last_bytes_received = time.monotonic()  # paho's keep-alive counts bytes, not packets
        if self._rest:
            self._rest += data
            if len(self._rest) < self._need:
                return MQTTErrorCode.MQTT_ERR_SUCCESS
            buf = bytes(self._rest)
        else:
            buf = data
        received = now_ms()
        published: list[Publish] = []
        rc = MQTTErrorCode.MQTT_ERR_SUCCESS
        pos, end = 0, len(buf)
        need = 0  # the whole length of a packet cut off by the read's end, once its header is in
        while pos < end:
            header = buf[pos]
            # The remaining length: 1 to 4 bytes, 7 bits each, low first.
            i, length, shift = pos + 1, 0, 0
            while i < end:
                byte = buf[i]
                i += 1
                length |= (byte & 127) << shift
                if byte < 128:
                    break
                shift += 7
                if shift > 21:
                    return MQTTErrorCode.MQTT_ERR_PROTOCOL
            else:
                break  # the length itself is cut off
            body_end = i + length
            if body_end > end:
                need = body_end - pos
                break  # the packet's end comes with the next read
            qos = (header >> 1) & 3
            if header & 0xF0 == _PUBLISH and qos < 2 and length > 2:
                topic_end = i + 2 + (buf[i] << 8 | buf[i + 1])
                if topic_end + 2 * qos > body_end:
                    self._rest, self._need = bytearray(), 0
                    return MQTTErrorCode.MQTT_ERR_PROTOCOL  # a topic longer than its packet
                if qos:
                    mid, start = buf[topic_end] << 8 | buf[topic_end + 1], topic_end + 2
                else:
                    mid, start = 0, topic_end
                topic = _topic(buf[i + 2 : topic_end])
                published.append((topic, buf[start:body_end], mid, qos, received, bool(header & 1)))
            else:
                if published:
                    handler(published)
                    published = []
                rc = self._handle_one(header, buf[i:body_end])
                if rc or self._sock is None:  # an error, or paho closed the connection meanwhile
                    self._rest, self._need = bytearray(), 0
                    return rc
            pos = body_end
        self._rest = bytearray(buf[pos:]) if pos < end else bytearray()
        self._need = need
        if published:
            handler(published)
        return rc

    def _handle_one(self, header: int, body: bytes) -> MQTTErrorCode:
        """Hand one whole packet to paho's own handler, as its reader would have."""
        self._in_packet = _fresh_in_packet()
        self._in_packet["command"] = header
        self._in_packet["packet"] = bytearray(body)
        self._in_packet["remaining_length"] = len(body)
        self._in_packet["have_remaining"] = 1
        try:
            rc = self._packet_handle()
        except MalformedPacket:
            rc = MQTTErrorCode.MQTT_ERR_PROTOCOL
        self._in_packet = _fresh_in_packet()
        return rc

    def _sock_close(self) -> None:
        # What was read ahead belongs to the old connection.
        self._rest, self._need = bytearray(), 0
        super()._sock_close()

    def close(self) -> None:
        """Close the socket and the wake-up pair now, rather than when the client is collected.

        Left to `__del__`, a client in a reference cycle may see its sockets collected first,
        unclosed.
        """
        self._reset_sockets()

    def ack_many(self, mids: Sequence[int]) -> None:
        """Acknowledge these QoS 1 messages with one write of their PUBACKs."""
        if mids:
            packet = struct.pack(f">{len(mids)}I", *[0x40020000 | mid for mid in mids])
            self._packet_queue(_PUBACK, packet, 0, 0)
