"""Modbus TCP: poll a unit's points in as few requests as the layout allows; reconnect with backoff."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Any

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from gateway.config import ModbusLink
from gateway.points import Read, Table, plan_reads
from ground.clock import now_ms

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 30.0
# Readings of one poll: device id → metric → value, or None for a device that did not answer.
Readings = dict[str, dict[str, Any] | None]
OnPoll = Callable[[Readings, int], None]


async def _read(client: AsyncModbusTcpClient, unit: int, read: Read) -> Sequence[int | bool]:
    """One request's values; ModbusException when the unit answers with an exception or not at all."""
    if read.table is Table.COIL:
        answer = await client.read_coils(read.start, count=read.count, device_id=unit)
    elif read.table is Table.DISCRETE_INPUT:
        answer = await client.read_discrete_inputs(read.start, count=read.count, device_id=unit)
    elif read.table is Table.HOLDING:
        answer = await client.read_holding_registers(read.start, count=read.count, device_id=unit)
    else:
        answer = await client.read_input_registers(read.start, count=read.count, device_id=unit)
    if answer.isError():
        raise ModbusException(f"{read.table.value} {read.start}+{read.count}: {answer}")
    # Bits come padded to whole bytes.
    return answer.bits[: read.count] if read.table.is_bits else answer.registers


async def poll(client: AsyncModbusTcpClient, link: ModbusLink, reads: list[Read]) -> Readings:
    """Every device's metrics from one round of reads; a device whose read failed gets None."""
    readings: Readings = {d.id: {} for d in link.devices}
    for read in reads:
        try:
            values = await _read(client, link.unit, read)
        except ModbusException as exc:
            log.debug("%s:%s unit %s: %s", link.host, link.port, link.unit, exc)
            for device_id, _ in read.points:
                readings[device_id] = None
            if not client.connected:
                break
            continue
        for device_id, metrics in read.decode(values).items():
            held = readings[device_id]
            if held is not None:
                held.update(metrics)
    if not client.connected:
        return dict.fromkeys(readings)
    return readings


async def run(link: ModbusLink, on_poll: OnPoll, stop: asyncio.Event) -> None:
    """Poll the unit every `poll_s` until `stop`; after a failed connection, wait longer each time."""
    reads = plan_reads(((d.id, p) for d in link.devices for p in d.points), link.max_gap)
    # Reconnecting is ours, with our backoff, so that every failed attempt is reported as a missed poll.
    client = AsyncModbusTcpClient(
        link.host, port=link.port, timeout=link.timeout_s, retries=1, reconnect_delay=0
    )
    where = f"modbus {link.host}:{link.port} unit {link.unit}"
    log.info("%s: %d devices in %d requests every %g s", where, len(link.devices), len(reads), link.poll_s)
    backoff = link.poll_s
    try:
        while not stop.is_set():
            started = asyncio.get_running_loop().time()
            if not client.connected and not await client.connect():
                on_poll(dict.fromkeys(d.id for d in link.devices), now_ms())
                log.warning("%s: no connection; trying again in %g s", where, backoff)
                await _wait(stop, backoff)
                backoff = min(backoff * 2, max(MAX_BACKOFF_S, link.poll_s))
                continue
            backoff = link.poll_s
            t_ms = now_ms()
            on_poll(await poll(client, link, reads), t_ms)
            elapsed = asyncio.get_running_loop().time() - started
            await _wait(stop, max(0.0, link.poll_s - elapsed))
    finally:
        client.close()


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
