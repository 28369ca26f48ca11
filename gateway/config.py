"""A gateway's config file: a site's equipment behind one box, read whole and checked, every problem named."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.points import Point, RegisterType, Table, WordOrder
from ground.contract import BOOL, DEVICE_TYPES, NUMBER, SITE_OR_DEVICE_ID
from ground.datafiles import Checker, Place, ProblemsError, read_yaml

_TOP_KEYS = ("site", "gateway_id", "modbus", "bacnet", "gb26875")
_MODBUS_KEYS = ("host", "port", "unit", "poll_s", "timeout_s", "max_gap", "devices")
_BACNET_KEYS = ("address", "device_instance", "poll_s", "timeout_s", "bind", "local_instance", "devices")
_GB_KEYS = ("listen", "devices")
_DEVICE_KEYS = ("id", "type", "points")
_MODBUS_POINT_KEYS = ("kind", "address", "type", "word_order", "scale", "offset", "bit", "deadband")
_BACNET_POINT_KEYS = ("object", "deadband")
_GB_DEVICE_KEYS = ("address", "id")
BACNET_PORT = 47808
# BACnet object types a point may name: analog ones hold numbers, binary ones booleans.
BACNET_NUMBER_OBJECTS = (
    "analog-input",
    "analog-output",
    "analog-value",
    "multi-state-input",
    "multi-state-value",
)
BACNET_BOOL_OBJECTS = ("binary-input", "binary-output", "binary-value")
_BACNET_OBJECT = re.compile(r"\s*([a-z-]+)\s*,\s*(\d+)\s*")
_HOST_PORT = re.compile(r"(\[[0-9a-fA-F:]+\]|[A-Za-z0-9_.-]+)(?::(\d+))?")
_TRANSMISSION_ADDRESS = re.compile(r"\d{1,12}")
MAX_BACNET_INSTANCE = 4_194_302  # 2^22 - 2: 4194303 means "no instance"


class GatewayConfigError(ProblemsError):
    """A gateway config that cannot be used; `problems` names every fault with its place."""


@dataclass(frozen=True, slots=True)
class ModbusDevice:
    """A device read from a Modbus unit: its id, contract type and points."""

    id: str
    type: str
    points: tuple[Point, ...]


@dataclass(frozen=True, slots=True)
class ModbusLink:
    """One Modbus TCP unit (a PLC or a device's own interface) and the devices read from it."""

    host: str
    port: int
    unit: int
    poll_s: float
    timeout_s: float
    max_gap: int
    devices: tuple[ModbusDevice, ...]


@dataclass(frozen=True, slots=True)
class BacnetPoint:
    """One metric of a device: the present value of a BACnet object."""

    metric: str
    object_type: str
    instance: int
    deadband: float | None = None


@dataclass(frozen=True, slots=True)
class BacnetDevice:
    """A device whose metrics are objects of a BACnet device."""

    id: str
    type: str
    points: tuple[BacnetPoint, ...]


@dataclass(frozen=True, slots=True)
class BacnetLink:
    """One BACnet/IP device (by address and instance) and the devices read from it."""

    host: str
    port: int
    device_instance: int
    poll_s: float
    timeout_s: float
    bind: str  # the gateway's own BACnet/IP address, as bacpypes3 writes it ("host": the host's own)
    local_instance: int  # the gateway's own device instance on the BACnet network
    devices: tuple[BacnetDevice, ...]


@dataclass(frozen=True, slots=True)
class FireAlarmLink:
    """A GB/T 26875.3 listener: transmission devices connect to it; their address → this site's fire panel."""

    host: str
    port: int
    panels: dict[str, str]


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    """What one gateway box reads and where it publishes it."""

    site: str
    gateway_id: str
    modbus: tuple[ModbusLink, ...] = ()
    bacnet: tuple[BacnetLink, ...] = ()
    gb26875: tuple[FireAlarmLink, ...] = ()
    device_types: dict[str, str] = field(default_factory=dict)  # device id → contract type, every adapter's

    @property
    def deadbands(self) -> dict[str, dict[str, float]]:
        """Device id → metric → a deadband the config gives instead of the usual one."""
        out: dict[str, dict[str, float]] = {}
        for link in self.modbus:
            for device in link.devices:
                for p in device.points:
                    if p.deadband is not None:
                        out.setdefault(device.id, {})[p.metric] = p.deadband
        for blink in self.bacnet:
            for bdevice in blink.devices:
                for bp in bdevice.points:
                    if bp.deadband is not None:
                        out.setdefault(bdevice.id, {})[bp.metric] = bp.deadband
        return out


class _ConfigChecker(Checker):
    """Builds the config from the parsed document, collecting every problem on the way."""

    def __init__(self) -> None:
        super().__init__(lambda at: str(at) or "top level")
        self.device_types: dict[str, str] = {}

    def number(
        self, at: Place, value: Any, default: float, low: float | None = None, integer: bool = False
    ) -> float:
        if value is None:
            return default
        kinds = int if integer else int | float
        if isinstance(value, bool) or not isinstance(value, kinds):
            self.add(at, f"{value!r} is not {'a whole number' if integer else 'a number'}")
            return default
        if low is not None and value < low:
            self.add(at, f"{value!r} is below {low:g}")
            return default
        return value

    def whole(self, at: Place, value: Any, default: int, low: int, high: int) -> int:
        number = self.number(at, value, default, integer=True)
        if value is not None and isinstance(number, int) and not low <= number <= high:
            self.add(at, f"{number} is not between {low} and {high}")
            return default
        return int(number)

    def host_port(self, at: Place, value: Any, default_port: int | None) -> tuple[str, int]:
        match = _HOST_PORT.fullmatch(value) if isinstance(value, str) else None
        if match is None or (match[2] is None and default_port is None):
            needs = "host:port" if default_port is None else "host or host:port"
            self.add(at, f"{value!r} is not {needs}")
            return "", 0
        port = int(match[2]) if match[2] is not None else int(default_port or 0)
        if not 0 < port < 65536:
            self.add(at, f"port {port} is not between 1 and 65535")
        return match[1].strip("[]"), port

    def device(self, at: Place, doc: Any, keys: tuple[str, ...]) -> tuple[str, str, dict[str, Any]] | None:
        """The device's id and type, checked, and its points mapping; None when it cannot be read."""
        if not self.mapping(at, doc, keys, ("id", "type", "points")):
            return None
        device_id = self.matching(
            at / "id", doc["id"], SITE_OR_DEVICE_ID, "{value!r} is not a device id ({pattern})"
        )
        device_type = self.device_type(
            at / "type", doc["type"], "{value!r} is not a device type of the contract ({known})"
        )
        if device_id is not None:
            if device_id in self.device_types:
                self.add(at / "id", f"device {device_id!r} is given twice")
            elif device_type is not None:
                self.device_types[device_id] = device_type
        points = doc["points"]
        if not isinstance(points, dict) or not points:
            self.add(at / "points", "must be a mapping of metric → point, with at least one")
            return None
        if device_id is None or device_type is None:
            return None
        return device_id, device_type, points

    def metric(self, at: Place, name: Any, device_type: str) -> str | None:
        """The metric's declared type (number or bool) when the contract lists it for the device type."""
        declared = DEVICE_TYPES[device_type].metrics.get(name) if isinstance(name, str) else None
        if declared is None:
            known = ", ".join(sorted(DEVICE_TYPES[device_type].metrics))
            self.add(at, f"{name!r} is not a metric of {device_type} (known: {known})")
            return None
        if declared not in (NUMBER, BOOL):
            self.add(at, f"{name} is text ({'/'.join(declared)}): a gateway reads numbers and booleans only")
            return None
        return str(declared)

    def links(self, doc: dict[str, Any], key: str) -> list[tuple[Place, Any]]:
        value = doc.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.add(Place((key,)), "must be a list")
            return []
        return [(Place((key, i)), item) for i, item in enumerate(value)]

    # Modbus

    def modbus_link(self, at: Place, doc: Any) -> ModbusLink | None:
        if not self.mapping(at, doc, _MODBUS_KEYS, ("host", "devices")):
            return None
        host = doc["host"]
        if not isinstance(host, str) or not _HOST_PORT.fullmatch(host) or ":" in host:
            self.add(at / "host", f"{host!r} is not a host name or address")
        port = self.whole(at / "port", doc.get("port"), 502, 1, 65535)
        unit = self.whole(at / "unit", doc.get("unit"), 1, 0, 255)
        poll_s = self.number(at / "poll_s", doc.get("poll_s"), 5.0, 0.05)
        timeout_s = self.number(at / "timeout_s", doc.get("timeout_s"), 3.0, 0.05)
        max_gap = self.whole(at / "max_gap", doc.get("max_gap"), 8, 0, 100)
        devices = []
        for i, item in enumerate(self.list_of(at / "devices", doc["devices"])):
            device = self.modbus_device((at / "devices")[i], item)
            if device is not None:
                devices.append(device)
        return ModbusLink(str(host), port, unit, float(poll_s), float(timeout_s), max_gap, tuple(devices))

    def list_of(self, at: Place, value: Any) -> list[Any]:
        if not isinstance(value, list) or not value:
            self.add(at, "must be a list with at least one item")
            return []
        return value

    def modbus_device(self, at: Place, doc: Any) -> ModbusDevice | None:
        read = self.device(at, doc, _DEVICE_KEYS)
        if read is None:
            return None
        device_id, device_type, points_doc = read
        points = []
        for name, spec in points_doc.items():
            point = self.modbus_point(at / "points" / name, name, spec, device_type)
            if point is not None:
                points.append(point)
        return ModbusDevice(device_id, device_type, tuple(points))

    def modbus_point(self, at: Place, name: Any, doc: Any, device_type: str) -> Point | None:
        declared = self.metric(at, name, device_type)
        if not self.mapping(at, doc, _MODBUS_POINT_KEYS, ("kind", "address")):
            return None
        table_name = self.choice(at / "kind", doc["kind"], [t.value for t in Table], "a Modbus table")
        address = self.whole(at / "address", doc["address"], -1, 0, 65535)
        type_name = self.choice(
            at / "type", doc.get("type", "uint16"), [t.value for t in RegisterType], "a register type"
        )
        order = self.choice(at / "word_order", doc.get("word_order", "big"), [w.value for w in WordOrder])
        scale = self.number(at / "scale", doc.get("scale"), 1.0)
        offset = self.number(at / "offset", doc.get("offset"), 0.0)
        deadband = self.number(at / "deadband", doc.get("deadband"), -1.0, 0.0)
        bit = None if doc.get("bit") is None else self.whole(at / "bit", doc["bit"], 0, 0, 15)
        if table_name is None or type_name is None or order is None or address < 0 or declared is None:
            return None
        table, rtype = Table(table_name), RegisterType(type_name)
        if table.is_bits:
            for key in ("type", "word_order", "scale", "offset", "bit"):
                if key in doc:
                    self.add(at / key, f"does not apply to a {table.value}, which is one bit")
        elif bit is not None and rtype.width != 1:
            self.add(at / "bit", f"a bit is read from a 16-bit register, not {rtype.value}")
        if address + (1 if table.is_bits else rtype.width) > 65536:
            self.add(at / "address", f"{rtype.value} at {address} runs past the last address, 65535")
        is_bool = table.is_bits or bit is not None
        if declared == BOOL and not is_bool:
            self.add(at, f"{name} is a boolean: read it from a coil, a discrete input or a register's bit")
        elif declared == NUMBER and is_bool:
            self.add(at, f"{name} is a number: read it from a holding or input register, without bit")
        return Point(
            name,
            table,
            address,
            rtype,
            WordOrder(order),
            float(scale),
            float(offset),
            bit,
            None if deadband < 0 else float(deadband),
        )

    # BACnet

    def bacnet_link(self, at: Place, doc: Any) -> BacnetLink | None:
        if not self.mapping(at, doc, _BACNET_KEYS, ("address", "device_instance", "devices")):
            return None
        host, port = self.host_port(at / "address", doc["address"], BACNET_PORT)
        instance = self.whole(at / "device_instance", doc["device_instance"], 0, 0, MAX_BACNET_INSTANCE)
        poll_s = self.number(at / "poll_s", doc.get("poll_s"), 10.0, 0.05)
        timeout_s = self.number(at / "timeout_s", doc.get("timeout_s"), 3.0, 0.05)
        bind = doc.get("bind", "host")
        if not isinstance(bind, str) or not bind:
            self.add(at / "bind", f"{bind!r} is not an address (e.g. 192.168.1.10/24 or host)")
            bind = "host"
        local = self.whole(
            at / "local_instance", doc.get("local_instance"), 4_194_000, 0, MAX_BACNET_INSTANCE
        )
        devices = []
        for i, item in enumerate(self.list_of(at / "devices", doc["devices"])):
            device = self.bacnet_device((at / "devices")[i], item)
            if device is not None:
                devices.append(device)
        return BacnetLink(host, port, instance, float(poll_s), float(timeout_s), bind, local, tuple(devices))

    def bacnet_device(self, at: Place, doc: Any) -> BacnetDevice | None:
        read = self.device(at, doc, _DEVICE_KEYS)
        if read is None:
            return None
        device_id, device_type, points_doc = read
        points = []
        for name, spec in points_doc.items():
            point = self.bacnet_point(at / "points" / name, name, spec, device_type)
            if point is not None:
                points.append(point)
        return BacnetDevice(device_id, device_type, tuple(points))

    def bacnet_point(self, at: Place, name: Any, doc: Any, device_type: str) -> BacnetPoint | None:
        declared = self.metric(at, name, device_type)
        if not self.mapping(at, doc, _BACNET_POINT_KEYS, ("object",)):
            return None
        deadband = self.number(at / "deadband", doc.get("deadband"), -1.0, 0.0)
        text = doc["object"]
        match = _BACNET_OBJECT.fullmatch(text) if isinstance(text, str) else None
        known = (*BACNET_NUMBER_OBJECTS, *BACNET_BOOL_OBJECTS)
        if match is None or match[1] not in known:
            self.add(at / "object", f"{text!r} is not an object type and instance ({', '.join(known)}),N")
            return None
        instance = int(match[2])
        if instance > MAX_BACNET_INSTANCE:
            self.add(at / "object", f"instance {instance} is above {MAX_BACNET_INSTANCE}")
        if declared == BOOL and match[1] not in BACNET_BOOL_OBJECTS:
            self.add(at / "object", f"{name} is a boolean: read it from a binary object")
        elif declared == NUMBER and match[1] not in BACNET_NUMBER_OBJECTS:
            self.add(at / "object", f"{name} is a number: read it from an analog or multi-state object")
        if declared is None:
            return None
        return BacnetPoint(name, match[1], instance, None if deadband < 0 else float(deadband))

    # GB/T 26875.3

    def fire_alarm_link(self, at: Place, doc: Any) -> FireAlarmLink | None:
        if not self.mapping(at, doc, _GB_KEYS, ("listen", "devices")):
            return None
        host, port = self.host_port(at / "listen", doc["listen"], None)
        panels: dict[str, str] = {}
        for i, item in enumerate(self.list_of(at / "devices", doc["devices"])):
            place = (at / "devices")[i]
            if not self.mapping(place, item, _GB_DEVICE_KEYS, _GB_DEVICE_KEYS):
                continue
            address = item["address"]
            if isinstance(address, int) and not isinstance(address, bool):
                self.add(place / "address", f"{address!r}: quote it, as YAML drops a number's leading zeros")
                address = None
            elif not isinstance(address, str) or not _TRANSMISSION_ADDRESS.fullmatch(address):
                self.add(place / "address", f"{address!r} is not a transmission device's address (digits)")
                address = None
            elif address in panels:
                self.add(place / "address", f"address {address!r} is given twice")
            device_id = self.matching(
                place / "id", item["id"], SITE_OR_DEVICE_ID, "{value!r} is not a device id ({pattern})"
            )
            if device_id is not None:
                if device_id in self.device_types:
                    self.add(place / "id", f"device {device_id!r} is given twice")
                self.device_types[device_id] = "fire_panel"
            if address is not None and device_id is not None:
                panels[address] = device_id
        return FireAlarmLink(host, port, panels)


def parse_config(doc: Any, source: str = "gateway config") -> GatewayConfig:
    """The config from a parsed document; GatewayConfigError names every problem found."""
    check = _ConfigChecker()
    root = Place()
    if not check.mapping(root, doc, _TOP_KEYS, ("site", "gateway_id")):
        raise GatewayConfigError(check.problems, source)
    site = check.matching(
        root / "site", doc["site"], SITE_OR_DEVICE_ID, "{value!r} is not a site id ({pattern})"
    )
    gateway_id = check.matching(
        root / "gateway_id", doc["gateway_id"], SITE_OR_DEVICE_ID, "{value!r} is not a gateway id ({pattern})"
    )
    modbus = [check.modbus_link(at, item) for at, item in check.links(doc, "modbus")]
    bacnet = [check.bacnet_link(at, item) for at, item in check.links(doc, "bacnet")]
    fire = [check.fire_alarm_link(at, item) for at, item in check.links(doc, "gb26875")]
    if not (doc.get("modbus") or doc.get("bacnet") or doc.get("gb26875")):
        check.add(root, "nothing to read: give modbus, bacnet or gb26875")
    if check.problems or site is None or gateway_id is None:
        raise GatewayConfigError(check.problems, source)
    return GatewayConfig(
        site,
        gateway_id,
        tuple(link for link in modbus if link is not None),
        tuple(link for link in bacnet if link is not None),
        tuple(link for link in fire if link is not None),
        dict(check.device_types),
    )


def load_config(path: Path) -> GatewayConfig:
    """Read and check a config file; GatewayConfigError names every problem, OSError if unreadable."""
    text = path.read_text(encoding="utf-8")
    return parse_config(read_yaml(text, str(path), GatewayConfigError), str(path))


def check_file(path: Path) -> list[str]:
    """Every problem of a config file, [] when it is good (`facility gateway check`)."""
    try:
        load_config(path)
    except GatewayConfigError as exc:
        return exc.problems
    except OSError as exc:
        return [f"cannot read: {exc.strerror or exc}"]
    return []
