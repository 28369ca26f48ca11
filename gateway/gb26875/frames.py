"""GB/T 26875.3-2011 frames: the 25-byte control unit, checksum, stream splitting, confirm and deny.

The layout was checked against these public descriptions of the standard:

- GB/T 26875.3-2011 §6.6 and §8, as summarised in github.com/ActorLancer/GB-T-26875.3.2011-rs,
  file `GB26875文档.md` (packet table, command bytes, type flags, object layouts, time label);
- github.com/shootingfans/codec_gb26875_3_2011, file `codec/codec.go` (offsets, little-endian
  serial number, length and 6-byte addresses, checksum over bytes 3..27 and the data unit);
- github.com/dgiot/dgiot, file `apps/dgiot_hjt212/include/dgiot_hjt212.hrl` (command bytes 1-6,
  type flags and object sizes: 4 bytes for a system status, 40 for a component status);
- http://www.gongliff.cn/m/biaozhun/864.html (the standard's text: scope, terms, GB 18030 text).

Frame: `@@`, serial number (2, low byte first), version (major, minor), time label (second, minute,
hour, day, month, year - 2000), source address (6, low byte first), destination address (6),
data unit length (2, low byte first, at most 1024), command (1), data unit, checksum (sum of the
control unit and the data unit modulo 256), `##`.

A transmission device's address in the gateway's config is written in decimal ("0000000001"): the
number it spells is the 48-bit little-endian source address, so "0000000001" is 01 00 00 00 00 00.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from enum import IntEnum
from typing import NamedTuple

START = b"@@"
END = b"##"
CONTROL_LEN = 25
OVERHEAD = len(START) + CONTROL_LEN + 1 + len(END)  # 30: a frame with an empty data unit
MAX_DATA_LEN = 1024  # §6.6: the application data unit is at most 1024 bytes
MAX_ADDRESS = 2**48 - 1


class Command(IntEnum):
    """The control unit's command byte (§6.6)."""

    CONTROL = 1
    SEND = 2
    CONFIRM = 3
    REQUEST = 4
    ANSWER = 5
    DENY = 6


class TimeLabel(NamedTuple):
    """The 6-byte time label as sent: second, minute, hour, day, month, year - 2000."""

    second: int
    minute: int
    hour: int
    day: int
    month: int
    year: int

    @classmethod
    def of(cls, moment: datetime) -> TimeLabel:
        """The time label of a moment (its wall-clock fields, as devices keep local time)."""
        return cls(moment.second, moment.minute, moment.hour, moment.day, moment.month, moment.year % 100)

    @classmethod
    def now(cls) -> TimeLabel:
        """The local time now."""
        return cls.of(datetime.now())

    def to_datetime(self) -> datetime | None:
        """The moment it names, or None when its fields are no valid date and time."""
        try:
            return datetime(2000 + self.year, self.month, self.day, self.hour, self.minute, self.second)
        except ValueError:
            return None

    def encode(self) -> bytes:
        """The 6 bytes on the wire."""
        return bytes(self)


class FrameError(ValueError):
    """A frame that breaks the layout; `frame` is what could still be read of it (a bad checksum's)."""

    def __init__(self, reason: str, frame: Frame | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.frame = frame


@dataclass(frozen=True, slots=True)
class Frame:
    """One frame; `data` is the application data unit, raw (see `units` to read it)."""

    serial: int
    command: int
    source: int
    destination: int
    time: TimeLabel
    data: bytes = b""
    version: tuple[int, int] = (1, 0)


def checksum(body: bytes | bytearray | memoryview) -> int:
    """The sum of the control unit's and data unit's bytes, modulo 256."""
    return sum(body) & 0xFF


def encode(frame: Frame) -> bytes:
    """The bytes of a frame, checksum and delimiters included."""
    if not 0 <= frame.serial <= 0xFFFF:
        raise ValueError(f"serial number {frame.serial} does not fit 2 bytes")
    if len(frame.data) > MAX_DATA_LEN:
        raise ValueError(f"data unit of {len(frame.data)} bytes, over {MAX_DATA_LEN}")
    for name, address in (("source", frame.source), ("destination", frame.destination)):
        if not 0 <= address <= MAX_ADDRESS:
            raise ValueError(f"{name} address {address} does not fit 6 bytes")
    body = b"".join(
        (
            frame.serial.to_bytes(2, "little"),
            bytes(frame.version),
            frame.time.encode(),
            frame.source.to_bytes(6, "little"),
            frame.destination.to_bytes(6, "little"),
            len(frame.data).to_bytes(2, "little"),
            bytes((frame.command,)),
            frame.data,
        )
    )
    return START + body + bytes((checksum(body),)) + END


def decode(data: bytes) -> Frame:
    """Read one whole frame; raises FrameError naming the part at fault."""
    if len(data) < OVERHEAD:
        raise FrameError(f"length: {len(data)} bytes, a frame has at least {OVERHEAD}")
    if data[:2] != START:
        raise FrameError(f"start: expected 40 40 (@@), found {data[:2].hex(' ')}")
    size = int.from_bytes(data[24:26], "little")
    if size > MAX_DATA_LEN:
        raise FrameError(f"length: data unit of {size} bytes, over {MAX_DATA_LEN}")
    if len(data) != OVERHEAD + size:
        raise FrameError(f"length: {len(data)} bytes, the data unit length {size} makes {OVERHEAD + size}")
    if data[-2:] != END:
        raise FrameError(f"end: expected 23 23 (##), found {data[-2:].hex(' ')}")
    frame = Frame(
        serial=int.from_bytes(data[2:4], "little"),
        version=(data[4], data[5]),
        time=TimeLabel(*data[6:12]),
        source=int.from_bytes(data[12:18], "little"),
        destination=int.from_bytes(data[18:24], "little"),
        command=data[26],
        data=bytes(data[27 : 27 + size]),
    )
    expected, found = checksum(data[2 : 27 + size]), data[27 + size]
    if expected != found:
        raise FrameError(f"checksum: expected 0x{expected:02X}, found 0x{found:02X}", frame)
    return frame


def answer(frame: Frame, command: Command, at: TimeLabel) -> Frame:
    """The reply to a received frame: its serial number, addresses swapped, no data unit."""
    return replace(
        frame, command=command, source=frame.destination, destination=frame.source, time=at, data=b""
    )


def confirm(frame: Frame, at: TimeLabel) -> Frame:
    """The confirmation (command 3) of a received frame."""
    return answer(frame, Command.CONFIRM, at)


def deny(frame: Frame, at: TimeLabel) -> Frame:
    """The denial (command 6) of a received frame."""
    return answer(frame, Command.DENY, at)


def address_number(text: str) -> int:
    """A transmission device's configured address ("0000000001") as its 48-bit wire value."""
    if not text.isdigit() or not text.isascii():
        raise ValueError(f"{text!r} is not a transmission device's address (digits)")
    number = int(text)
    if number > MAX_ADDRESS:
        raise ValueError(f"{text!r} does not fit the 6-byte address")
    return number


class Splitter:
    """Cuts a TCP byte stream into candidate frames: `@@`, a length within bounds and `##` where it says.

    Bytes that cannot begin a frame are dropped (and counted) until the next `@@`; the checksum is
    left to `decode`, so that a frame with a bad one can still be denied.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.discarded = 0

    def feed(self, data: bytes) -> Iterator[bytes]:
        """Add bytes as they arrive; yields each whole frame they complete."""
        self._buffer += data
        while True:
            start = self._buffer.find(START)
            if start < 0:
                # A trailing "@" may be the first half of the next start.
                keep = 1 if self._buffer.endswith(START[:1]) else 0
                self._drop(len(self._buffer) - keep)
                return
            self._drop(start)
            if len(self._buffer) < 26:
                return
            size = int.from_bytes(self._buffer[24:26], "little")
            if size > MAX_DATA_LEN:
                self._drop(1)  # not a frame's start after all: look for the next
                continue
            total = OVERHEAD + size
            if len(self._buffer) < total:
                return
            if self._buffer[total - 2 : total] != END:
                self._drop(1)
                continue
            frame = bytes(self._buffer[:total])
            del self._buffer[:total]
            yield frame

    def _drop(self, count: int) -> None:
        if count:
            del self._buffer[:count]
            self.discarded += count
