"""Modbus points: register types, word order, scale and offset, bits; and reads grouped into few requests."""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum


class Table(StrEnum):
    """The four Modbus data tables a point is read from."""

    COIL = "coil"
    DISCRETE_INPUT = "discrete_input"
    HOLDING = "holding"
    INPUT = "input"

    @property
    def is_bits(self) -> bool:
        """True for the one-bit tables (coils, discrete inputs)."""
        return self in (Table.COIL, Table.DISCRETE_INPUT)


class RegisterType(StrEnum):
    """How one or two 16-bit registers hold a number."""

    UINT16 = "uint16"
    INT16 = "int16"
    UINT32 = "uint32"
    INT32 = "int32"
    FLOAT32 = "float32"

    @property
    def width(self) -> int:
        """Registers the type takes."""
        return 1 if self in (RegisterType.UINT16, RegisterType.INT16) else 2


class WordOrder(StrEnum):
    """Which register of a 32-bit value comes first: big (high word first, Modbus's usual) or little."""

    BIG = "big"
    LITTLE = "little"


# The Modbus limits of one read request: registers (function codes 3, 4) and bits (1, 2).
MAX_REGISTERS = 125
MAX_BITS = 2000
_FORMAT = {
    RegisterType.UINT16: ">H",
    RegisterType.INT16: ">h",
    RegisterType.UINT32: ">I",
    RegisterType.INT32: ">i",
    RegisterType.FLOAT32: ">f",
}


@dataclass(frozen=True, slots=True)
class Point:
    """One metric of a device read from a Modbus table.

    A boolean is a coil, a discrete input, or `bit` (0 = least significant) of a register; a number
    is `raw * scale + offset` of a register value.
    """

    metric: str
    table: Table
    address: int
    type: RegisterType = RegisterType.UINT16
    word_order: WordOrder = WordOrder.BIG
    scale: float = 1.0
    offset: float = 0.0
    bit: int | None = None
    deadband: float | None = None  # None: the contract's usual deadband for the metric

    @property
    def width(self) -> int:
        """Addresses the point takes in its table."""
        return 1 if self.table.is_bits else self.type.width

    def decode(self, values: Sequence[int | bool]) -> bool | float | int:
        """The metric's value from the point's own registers or bit, in address order."""
        if self.table.is_bits:
            return bool(values[0])
        if self.bit is not None:
            return bool((int(values[0]) >> self.bit) & 1)
        words = [int(v) & 0xFFFF for v in values[: self.width]]
        if self.word_order is WordOrder.LITTLE:
            words.reverse()
        raw: int | float = struct.unpack(_FORMAT[self.type], struct.pack(f">{len(words)}H", *words))[0]
        if self.scale == 1.0 and self.offset == 0.0 and self.type is not RegisterType.FLOAT32:
            return int(raw)
        # Rounded to what the scale can resolve: 1234 * 0.001 would be 1.2340000000000002.
        return round(raw * self.scale + self.offset, 9)


@dataclass(frozen=True, slots=True)
class Read:
    """One read request: `count` addresses of one table from `start`, and the points it serves."""

    table: Table
    start: int
    count: int
    points: tuple[tuple[str, Point], ...]  # (device id, point)

    def decode(self, values: Sequence[int | bool]) -> dict[str, dict[str, bool | float | int]]:
        """Each device's metrics from the request's answer (device id → metric → value)."""
        out: dict[str, dict[str, bool | float | int]] = {}
        for device_id, point in self.points:
            at = point.address - self.start
            out.setdefault(device_id, {})[point.metric] = point.decode(values[at : at + point.width])
        return out


def plan_reads(points: Iterable[tuple[str, Point]], max_gap: int = 8) -> list[Read]:
    """As few reads as the layout allows: points of one table within `max_gap` unused addresses share one.

    A read never exceeds the protocol's limit (125 registers, 2000 bits); a gap is read and ignored,
    which costs less than another round trip, but some PLCs refuse unmapped addresses (max_gap 0).
    """
    by_table: dict[Table, list[tuple[str, Point]]] = {}
    for device_id, point in points:
        by_table.setdefault(point.table, []).append((device_id, point))
    reads: list[Read] = []
    for table in Table:
        members = sorted(by_table.get(table, []), key=lambda dp: (dp[1].address, dp[0], dp[1].metric))
        limit = MAX_BITS if table.is_bits else MAX_REGISTERS
        group: list[tuple[str, Point]] = []
        start = end = 0  # the group's addresses: [start, end)
        for device_id, point in members:
            p_end = point.address + point.width
            if group and point.address - end <= max_gap and max(end, p_end) - start <= limit:
                group.append((device_id, point))
                end = max(end, p_end)
                continue
            if group:
                reads.append(Read(table, start, end - start, tuple(group)))
            group, start, end = [(device_id, point)], point.address, p_end
        if group:
            reads.append(Read(table, start, end - start, tuple(group)))
    return reads
