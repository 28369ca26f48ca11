"""Where the simulated devices are: a name, building, floor and location for every device of a plan's fleet.

Registered ahead, as a site's inventory file would be, so that a ticket opened from a simulated
alarm says where to go. Deterministic: the same plan gives the same inventory.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from random import Random

from simulators.devices import DeviceModel, Elevator, build_fleet
from simulators.publisher import SimulationPlan

# Each site has two buildings over a shared two-level basement: plant rooms on B1, the garage on
# B1 and B2, tanks on the roof. Floors are written as on the building's plans: "B2", "1", "12",
# "RF"; a ticket's location reads "Tower A, floor B1, fire pump room".
BUILDING_NAMES = (("Tower A", "Tower B"), ("Block 1", "Block 2"), ("North Tower", "South Tower"))
DEFAULT_TOP_FLOOR = 18  # a building no simulated lift serves


@dataclass(frozen=True)
class Placement:
    """One simulated device as registered ahead: its identity, a human name and where it is."""

    site: str
    device_id: str
    device_type: str
    name: str
    building: str
    floor: str
    location: str

    def fields(self) -> dict[str, str]:
        """The fields `DeviceDirectory.register` takes."""
        return asdict(self)


@dataclass(frozen=True)
class _Site:
    buildings: tuple[str, ...]
    top_floor: dict[str, int]  # each building's highest floor above ground
    count: Counter[str]  # devices of each type at the site


# Where a device goes: (name, building, floor, location).
Where = tuple[str, str, str, str]
Place = Callable[[DeviceModel, _Site], Where]


def floor_label(floor: int) -> str:
    """A lift's floor number as written on the plans: -2 is "B2", 12 is "12"."""
    return f"B{-floor}" if floor < 0 else str(floor)


def _name(base: str, d: DeviceModel, site: _Site) -> str:
    """Numbered only where the site has more than one of the type."""
    return f"{base} {d.index + 1}" if site.count[d.device_type] > 1 else base


def _building(d: DeviceModel, site: _Site) -> str:
    """Devices fitted once per building take the buildings in turn."""
    return site.buildings[d.index % len(site.buildings)]


def _elevator(d: DeviceModel, site: _Site) -> Where:
    assert isinstance(d, Elevator)
    served = f"{floor_label(d.floors[0])} to {floor_label(d.floors[-1])}"
    return _name("Lift", d, site), _building(d, site), "1", f"lift lobby, serves floors {served}"


def _lighting(d: DeviceModel, site: _Site) -> Where:
    # The model keeps every third circuit on around the clock: the garage's. The others run
    # dusk to dawn: outdoors and at the entrances.
    name = _name("Lighting circuit", d, site)
    kind = d.index % 3
    if kind == 2:
        return name, site.buildings[0], "B1", "garage, ramp and parking bays"
    if kind == 1:
        return name, site.buildings[0], "1", "podium garden and paths"
    return name, _building(d, site), "1", "main entrance and canopy"


def _emergency_light(d: DeviceModel, site: _Site) -> Where:
    building = _building(d, site)
    rng = Random(f"{d.site}/{d.device_id}")  # a string seed: the same place in every process
    floor = rng.randint(2, site.top_floor[building])
    return _name("Emergency light", d, site), building, str(floor), f"stair {rng.randint(1, 2)}, exit door"


def _air_quality(d: DeviceModel, site: _Site) -> Where:
    # The model's occupancy is a lobby's or a clubhouse's; the guards' tour passes the clubhouse on 2F.
    if d.index % 2:
        return _name("Air monitor", d, site), site.buildings[0], "2", "residents' clubhouse"
    return _name("Air monitor", d, site), _building(d, site), "1", "main lobby"


def _fixed(base: str, floor: str, location: str, per_building: bool = False) -> Place:
    """A type kept in one room of the site, or one in each building; `{n}` in the location numbers it."""

    def place(d: DeviceModel, site: _Site) -> Where:
        building = _building(d, site) if per_building else site.buildings[0]
        return _name(base, d, site), building, floor, location.format(n=d.index + 1)

    return place


PLACES: dict[str, Place] = {
    "elevator": _elevator,
    "fire_panel": _fixed("Fire alarm panel", "1", "fire control room"),
    "sprinkler_pipe": _fixed("Sprinkler riser", "B1", "alarm valve room, riser {n}", per_building=True),
    "fire_water_tank": _fixed("Fire water tank", "RF", "fire water tank"),
    "fire_pump": _fixed("Fire pump", "B1", "fire pump room"),
    "lighting_circuit": _lighting,
    "emergency_light": _emergency_light,
    "water_pump": _fixed("Booster pump", "B1", "domestic water pump room, pump {n}"),
    "water_tank": _fixed("Roof water tank", "RF", "domestic water tank"),
    "sump_pit": _fixed("Sump pit", "B2", "garage sump pit"),
    "air_quality": _air_quality,
    "garage_co": _fixed("Garage CO sensor", "B2", "garage, by the ramp"),
    "chiller": _fixed("Chiller", "B1", "chiller plant room"),
    # Carried by a guard on the tour; docked and charged in the security room.
    "patrol_reader": _fixed("Patrol reader", "1", "security control room, charging dock"),
}


def _sites(fleet: Sequence[DeviceModel]) -> dict[str, _Site]:
    """Each site's buildings, with their heights taken from the lifts that serve them."""
    sites: dict[str, _Site] = {}
    for d in fleet:
        site = sites.get(d.site)
        if site is None:
            names = Random(f"buildings/{d.site}").choice(BUILDING_NAMES)
            site = sites[d.site] = _Site(names, {}, Counter())
        site.count[d.device_type] += 1
    for d in fleet:
        if isinstance(d, Elevator):
            site = sites[d.site]
            building = _building(d, site)
            site.top_floor[building] = max(site.top_floor.get(building, 1), d.floors[-1])
    for site in sites.values():
        for building in site.buildings:
            site.top_floor.setdefault(building, DEFAULT_TOP_FLOOR)
    return sites


def inventory(plan: SimulationPlan) -> list[Placement]:
    """Every device the plan's simulators publish for, with a name and a plausible place."""
    # The fleet the publisher builds from the same plan: the lifts' floors are drawn from its seed.
    fleet = build_fleet(plan.sites, plan.seed, plan.fault_rate_per_h)
    sites = _sites(fleet)
    placements = []
    for d in fleet:
        name, building, floor, location = PLACES[d.device_type](d, sites[d.site])
        placements.append(Placement(d.site, d.device_id, d.device_type, name, building, floor, location))
    return placements
