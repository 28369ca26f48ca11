"""The gateway config: the issue's example loads; every problem of a bad one is named with its place."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import GatewayConfigError, check_file, load_config, parse_config
from gateway.points import RegisterType, Table

EXAMPLE = """\
site: s01
gateway_id: gw-b1-pumps
modbus:
  - host: 127.0.0.1
    port: 502
    unit: 1
    poll_s: 5
    devices:
      - id: water-pump-1
        type: water_pump
        points:
          running:             {kind: coil, address: 0}
          fault:               {kind: discrete_input, address: 1}
          outlet_pressure_mpa: {kind: holding, address: 100, type: uint16, scale: 0.001}
bacnet:
  - address: 127.0.0.1:47808
    device_instance: 1001
    poll_s: 10
    devices:
      - id: chiller-1
        type: chiller
        points:
          supply_temp_c: {object: "analog-input,1"}
          running:       {object: "binary-input,1"}
gb26875:
  - listen: 0.0.0.0:9000
    devices:
      - address: "0000000001"
        id: fire-panel-1
"""


def test_the_example_loads(tmp_path: Path):
    path = tmp_path / "gw.yaml"
    path.write_text(EXAMPLE)
    config = load_config(path)
    assert (config.site, config.gateway_id) == ("s01", "gw-b1-pumps")
    pump = config.modbus[0].devices[0]
    assert [p.metric for p in pump.points] == ["running", "fault", "outlet_pressure_mpa"]
    pressure = pump.points[2]
    assert (pressure.table, pressure.address, pressure.type, pressure.scale) == (
        Table.HOLDING,
        100,
        RegisterType.UINT16,
        0.001,
    )
    chiller = config.bacnet[0]
    assert (chiller.host, chiller.port, chiller.device_instance, chiller.bind) == (
        "127.0.0.1",
        47808,
        1001,
        "host",
    )
    assert [(p.metric, p.object_type, p.instance) for p in chiller.devices[0].points] == [
        ("supply_temp_c", "analog-input", 1),
        ("running", "binary-input", 1),
    ]
    assert (config.gb26875[0].host, config.gb26875[0].port) == ("0.0.0.0", 9000)
    assert config.gb26875[0].panels == {"0000000001": "fire-panel-1"}
    assert config.device_types == {
        "water-pump-1": "water_pump",
        "chiller-1": "chiller",
        "fire-panel-1": "fire_panel",
    }
    assert check_file(path) == []


BAD = """\
site: S 01
gateway_id: gw-1
colour: blue
modbus:
  - host: 127.0.0.1
    port: 70000
    unit: 1
    poll_s: 0
    devices:
      - id: water-pump-1
        type: water_pump
        points:
          running:  {kind: coill, address: 0}
          fault:    {kind: holding, address: 1}
          speed:    {kind: holding, address: 2}
          outlet_pressure_mpa: {kind: holding, address: 65535, type: float32, word_order: middle}
      - id: water-pump-1
        type: pump
        points: {}
      - id: sump-1
        type: sump_pit
        points:
          level_pct: {kind: coil, address: 3, scale: 2}
          pumps_running: {kind: holding, address: 4, type: int32, bit: 2}
bacnet:
  - address: "chiller:notaport"
    device_instance: 1001
    devices:
      - id: chiller-1
        type: chiller
        points:
          supply_temp_c: {object: "binary-input,1"}
          running: {object: "analog-input,1"}
          tripped: {object: "door,1"}
gb26875:
  - listen: 9000
    devices:
      - {address: 0000000001, id: fire-panel-1}
      - {address: "2", id: chiller-1}
"""


def test_every_problem_is_named_with_its_place(tmp_path: Path):
    path = tmp_path / "bad.yaml"
    path.write_text(BAD)
    problems = check_file(path)
    expected = [
        "colour: unknown key",
        "site: 'S 01' is not a site id",
        "modbus[0].port: 70000 is not between 1 and 65535",
        "modbus[0].poll_s: 0 is below 0.05",
        "modbus[0].devices[0].points.running.kind: 'coill' is not a Modbus table",
        "modbus[0].devices[0].points.fault: fault is a boolean: read it from a coil",
        "modbus[0].devices[0].points.speed: 'speed' is not a metric of water_pump",
        "modbus[0].devices[0].points.outlet_pressure_mpa.word_order: 'middle' is not big or little",
        "modbus[0].devices[1].id: device 'water-pump-1' is given twice",
        "modbus[0].devices[1].type: 'pump' is not a device type of the contract",
        "modbus[0].devices[1].points: must be a mapping of metric → point, with at least one",
        "modbus[0].devices[2].points.level_pct.scale: does not apply to a coil",
        "modbus[0].devices[2].points.level_pct: level_pct is a number",
        "modbus[0].devices[2].points.pumps_running.bit: a bit is read from a 16-bit register, not int32",
        "modbus[0].devices[2].points.pumps_running: pumps_running is a number",
        "bacnet[0].address: 'chiller:notaport' is not host or host:port",
        "bacnet[0].devices[0].points.supply_temp_c.object: supply_temp_c is a number",
        "bacnet[0].devices[0].points.running.object: running is a boolean",
        "bacnet[0].devices[0].points.tripped.object: 'door,1' is not an object type",
        "gb26875[0].listen: 9000 is not host:port",
        "gb26875[0].devices[0].address: 1: quote it",
        "gb26875[0].devices[1].id: device 'chiller-1' is given twice",
    ]
    for text in expected:
        assert any(p.startswith(text) for p in problems), f"{text!r} not among {problems}"
    assert len(problems) == len(expected), problems


def test_a_float_past_the_last_address_is_named():
    doc = {
        "site": "s01",
        "gateway_id": "gw-1",
        "modbus": [
            {
                "host": "plc",
                "devices": [
                    {
                        "id": "t",
                        "type": "water_tank",
                        "points": {"level_pct": {"kind": "input", "address": 65535, "type": "float32"}},
                    }
                ],
            }
        ],
    }
    with pytest.raises(GatewayConfigError) as caught:
        parse_config(doc)
    assert caught.value.problems == [
        "modbus[0].devices[0].points.level_pct.address: float32 at 65535 runs past the last address, 65535"
    ]


def test_a_config_with_nothing_to_read_and_bad_yaml_are_refused(tmp_path: Path):
    with pytest.raises(GatewayConfigError) as caught:
        parse_config({"site": "s01", "gateway_id": "gw-1"})
    assert caught.value.problems == ["top level: nothing to read: give modbus, bacnet or gb26875"]
    path = tmp_path / "dup.yaml"
    path.write_text("site: s01\nsite: s02\n")
    assert check_file(path)[0].startswith("not valid YAML")
    assert check_file(tmp_path / "missing.yaml")[0].startswith("cannot read")
