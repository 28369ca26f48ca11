"""Application data units: type flag, object count, objects; system (type 1) and component (type 2) status."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, IntFlag

from gateway.gb26875.frames import TimeLabel

DESCRIPTION_LEN = 31  # a component's description: GB 18030 text, padded
SYSTEM_STATUS_LEN = 4 + 6  # system type, system address, status (2); time label
COMPONENT_STATUS_LEN = 40 + 6  # 3 + address (4) + status (2) + description (31); time label


class TypeFlag(IntEnum):
    """The data unit types this gateway reads (§8.1.1); others are confirmed and kept raw."""

    SYSTEM_STATUS = 1  # 上傳建築消防設施系統狀態
    COMPONENT_STATUS = 2  # 上傳建築消防設施部件運行狀態


class SystemFlag(IntFlag):
    """A system's status bits (§8.2.1.1); NORMAL clear means the system is under test."""

    NORMAL = 1 << 0
    FIRE_ALARM = 1 << 1
    FAULT = 1 << 2
    SHIELDED = 1 << 3  # 屏蔽: disabled
    SUPERVISORY = 1 << 4  # 監管
    START = 1 << 5
    FEEDBACK = 1 << 6
    DELAY = 1 << 7
    MAIN_POWER_FAULT = 1 << 8
    BACKUP_POWER_FAULT = 1 << 9
    BUS_FAULT = 1 << 10
    MANUAL = 1 << 11
    CONFIG_CHANGED = 1 << 12
    RESET = 1 << 13


class ComponentFlag(IntFlag):
    """A component's status bits (§8.2.1.2); NORMAL clear means the component is under test."""

    NORMAL = 1 << 0
    FIRE_ALARM = 1 << 1
    FAULT = 1 << 2
    SHIELDED = 1 << 3
    SUPERVISORY = 1 << 4
    START = 1 << 5
    FEEDBACK = 1 << 6
    DELAY = 1 << 7
    POWER_FAULT = 1 << 8


class UnitError(ValueError):
    """A data unit whose length does not match its type and object count."""


@dataclass(frozen=True, slots=True)
class SystemStatus:
    """A building fire facility system's status (type 1)."""

    system_type: int
    system_address: int
    status: int
    time: TimeLabel

    def encode(self) -> bytes:
        """The object's bytes, time label included."""
        return (
            bytes((self.system_type, self.system_address))
            + self.status.to_bytes(2, "little")
            + self.time.encode()
        )

    @classmethod
    def decode(cls, raw: bytes) -> SystemStatus:
        """Read one object of SYSTEM_STATUS_LEN bytes."""
        return cls(raw[0], raw[1], int.from_bytes(raw[2:4], "little"), TimeLabel(*raw[4:10]))


@dataclass(frozen=True, slots=True)
class ComponentStatus:
    """A component's running status (type 2); its 4-byte address holds the loop high, the point low."""

    system_type: int
    system_address: int
    component_type: int
    address: int
    status: int
    description: str
    time: TimeLabel

    @classmethod
    def at(
        cls, loop: int, point: int, status: int, description: str, time: TimeLabel, **codes: int
    ) -> ComponentStatus:
        """A component by loop and point; `codes` may set system_type, system_address, component_type."""
        return cls(
            codes.get("system_type", 1),
            codes.get("system_address", 1),
            codes.get("component_type", 42),  # 點型光電感煙火災探測器
            (loop << 16) | point,
            status,
            description,
            time,
        )

    @property
    def loop(self) -> int:
        """The loop (回路), the address's high two bytes."""
        return self.address >> 16

    @property
    def point(self) -> int:
        """The point within its loop, the address's low two bytes."""
        return self.address & 0xFFFF

    @property
    def label(self) -> str:
        """The component as people write it: L01-A023."""
        return f"L{self.loop:02d}-A{self.point:03d}"

    def encode(self) -> bytes:
        """The object's bytes, time label included."""
        return b"".join(
            (
                bytes((self.system_type, self.system_address, self.component_type)),
                self.address.to_bytes(4, "little"),
                self.status.to_bytes(2, "little"),
                encode_text(self.description),
                self.time.encode(),
            )
        )

    @classmethod
    def decode(cls, raw: bytes) -> ComponentStatus:
        """Read one object of COMPONENT_STATUS_LEN bytes."""
        return cls(
            raw[0],
            raw[1],
            raw[2],
            int.from_bytes(raw[3:7], "little"),
            int.from_bytes(raw[7:9], "little"),
            decode_text(raw[9:40]),
            TimeLabel(*raw[40:46]),
        )


Object = SystemStatus | ComponentStatus


@dataclass(frozen=True, slots=True)
class DataUnit:
    """An application data unit; `objects` for the types read, `raw` (after the count) for the others."""

    type_flag: int
    count: int
    objects: tuple[Object, ...] = ()
    raw: bytes = b""

    def encode(self) -> bytes:
        """The data unit's bytes."""
        body = b"".join(o.encode() for o in self.objects) if self.objects else self.raw
        return bytes((self.type_flag, self.count)) + body


def units(*objects: Object) -> DataUnit:
    """A data unit of objects of one type."""
    flag = TypeFlag.SYSTEM_STATUS if isinstance(objects[0], SystemStatus) else TypeFlag.COMPONENT_STATUS
    return DataUnit(flag, len(objects), objects)


_SIZES: dict[int, int] = {
    TypeFlag.SYSTEM_STATUS: SYSTEM_STATUS_LEN,
    TypeFlag.COMPONENT_STATUS: COMPONENT_STATUS_LEN,
}


def decode_unit(data: bytes) -> DataUnit | None:
    """Read a data unit (None for an empty one, as a heartbeat sends); raises UnitError on a bad length."""
    if not data:
        return None
    if len(data) < 2:
        raise UnitError(f"data unit of {len(data)} byte: needs a type flag and an object count")
    flag, count, body = data[0], data[1], data[2:]
    size = _SIZES.get(flag)
    if size is None:
        return DataUnit(flag, count, raw=bytes(body))
    if len(body) != count * size:
        raise UnitError(f"type {flag}: {count} objects take {count * size} bytes, found {len(body)}")
    read = SystemStatus.decode if flag == TypeFlag.SYSTEM_STATUS else ComponentStatus.decode
    return DataUnit(flag, count, tuple(read(body[i : i + size]) for i in range(0, len(body), size)))


def encode_text(text: str) -> bytes:
    """A description as 31 bytes of GB 18030, cut at a character boundary and padded with NUL."""
    raw = b""
    for char in text:
        more = char.encode("gb18030")
        if len(raw) + len(more) > DESCRIPTION_LEN:
            break
        raw += more
    return raw.ljust(DESCRIPTION_LEN, b"\x00")


def decode_text(raw: bytes) -> str:
    """A description's text: up to the first NUL, without the space padding some devices use."""
    return raw.split(b"\x00", 1)[0].decode("gb18030", errors="replace").strip()
