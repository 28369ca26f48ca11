"""Register decoding against golden dumps, and reads grouped into as few requests as the layout allows."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gateway.config import parse_config
from gateway.points import MAX_BITS, MAX_REGISTERS, Point, RegisterType, Table, WordOrder, plan_reads

GOLDEN = Path(__file__).parent / "golden"
CASES = yaml.safe_load((GOLDEN / "registers.yaml").read_text())["cases"]


def _point(spec: dict[str, object]) -> Point:
    return Point(
        "x",
        Table(str(spec["kind"])),
        0,
        RegisterType(str(spec.get("type", "uint16"))),
        WordOrder(str(spec.get("word_order", "big"))),
        float(spec.get("scale", 1.0)),  # type: ignore[arg-type]
        float(spec.get("offset", 0.0)),  # type: ignore[arg-type]
        spec.get("bit"),  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_a_point_decodes_its_registers_as_the_golden_dump_says(case):
    value = _point(case["point"]).decode(case["words"])
    assert value == case["value"]
    assert type(value) is type(case["value"]) or isinstance(case["value"], float)


def test_the_pump_room_dump_decodes_to_the_expected_readings_in_five_requests():
    golden = yaml.safe_load((GOLDEN / "pump_room.yaml").read_text())
    devices = [{"id": d, **spec} for d, spec in golden["points"].items()]
    config = parse_config(
        {"site": "s01", "gateway_id": "gw-1", "modbus": [{"host": "plc", "devices": devices}]}
    )
    link = config.modbus[0]
    reads = plan_reads((d.id, p) for d in link.devices for p in d.points)
    assert [{"table": r.table.value, "start": r.start, "count": r.count} for r in reads] == golden["requests"]
    readings: dict[str, dict[str, object]] = {}
    for read in reads:
        table = golden["tables"][read.table.value]
        answer = [table.get(a, 0) for a in range(read.start, read.start + read.count)]
        for device_id, metrics in read.decode(answer).items():
            readings.setdefault(device_id, {}).update(metrics)
    assert readings == golden["expected"]


def test_reads_stop_at_the_protocol_limits():
    registers = [
        (f"d{i}", Point("level_pct", Table.HOLDING, i * 2, RegisterType.FLOAT32)) for i in range(200)
    ]
    bits = [(f"d{i}", Point("running", Table.COIL, i)) for i in range(4500)]
    reads = plan_reads([*registers, *bits])
    holding = [r for r in reads if r.table is Table.HOLDING]
    coils = [r for r in reads if r.table is Table.COIL]
    assert all(r.count <= MAX_REGISTERS for r in holding) and len(holding) == 4
    assert sum(len(r.points) for r in holding) == 200
    assert all(r.count <= MAX_BITS for r in coils) and [r.count for r in coils] == [2000, 2000, 500]


def test_addresses_further_apart_than_the_gap_are_read_apart():
    points = [
        ("d", Point("a", Table.INPUT, 0)),
        ("d", Point("b", Table.INPUT, 5)),
        ("d", Point("c", Table.INPUT, 20)),
    ]
    assert [(r.start, r.count) for r in plan_reads(points, max_gap=4)] == [(0, 6), (20, 1)]
    assert [(r.start, r.count) for r in plan_reads(points, max_gap=0)] == [(0, 1), (5, 1), (20, 1)]
