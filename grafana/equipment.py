"""One dashboard per kind of equipment: every metric of its device types, with the rules' limits drawn."""

from __future__ import annotations

from dataclasses import dataclass

from grafana_foundation_sdk.builders import dashboard as board
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.models import dashboard as model

from grafana import panels
from grafana.frame import SITE, alarms_annotation, dashboard, finish, tickets_annotation
from grafana.influxql import InfluxQL, tag_is, tag_variable
from grafana.thresholds import limits, steps
from ground.contract import BOOL, DEVICE_TYPES, NUMBER
from rules.catalogue import Catalogue


@dataclass(frozen=True)
class Equipment:
    """A dashboard's device types."""

    uid: str
    title: str
    description: str
    device_types: tuple[str, ...]


EQUIPMENT = (
    Equipment(
        "facility-elevators", "Elevators", "Lift cars: position, doors, occupancy, mode.", ("elevator",)
    ),
    Equipment(
        "facility-fire",
        "Fire protection",
        "Fire alarm panel, sprinkler pipes, fire water tank and fire pump.",
        ("fire_panel", "sprinkler_pipe", "fire_water_tank", "fire_pump"),
    ),
    Equipment(
        "facility-lighting",
        "Lighting",
        "Lighting circuits and emergency lights.",
        ("lighting_circuit", "emergency_light"),
    ),
    Equipment(
        "facility-water",
        "Water supply and drainage",
        "Water pumps, domestic water tanks and sump pits (the fire water tank is on Fire protection).",
        ("water_pump", "water_tank", "sump_pit"),
    ),
    Equipment(
        "facility-environment",
        "Environment",
        "Indoor air quality, garage CO and chillers.",
        ("air_quality", "garage_co", "chiller"),
    ),
)

# Grafana unit ids for the contract's unit suffixes.
UNITS = {
    "_pct": "percent",
    "_c": "celsius",
    "_ppm": "ppm",
    "_ugm3": "conμgm3",
    "_mgm3": "conmgm3",
    "_mps": "velocityms",
    "_w": "watt",
    "_v": "volt",
    "_a": "amp",
    "_min": "m",
    "_mpa": "suffix: MPa",
}
DEVICE = tag_is("device_id", "device")


def unit_of(metric: str) -> str:
    """The Grafana unit of a metric, from its name's suffix."""
    for suffix, unit in UNITS.items():
        if metric.endswith(suffix):
            return unit
    return "short"


def _where(extra: str = "") -> str:
    return f"{SITE} AND {DEVICE}{extra} AND $timeFilter"


def metric_panel(catalogue: Catalogue, device_type: str, metric: str) -> cogbuilder.Builder[model.Panel]:
    """A number as a time series with its rules' limits; a boolean or enumeration as a state timeline."""
    kind = DEVICE_TYPES[device_type].metrics[metric]
    title = f"{device_type} · {metric}"
    if kind == NUMBER:
        own = [lim for lim in limits(catalogue, device_type) if lim.metric == metric]
        query = (
            f'SELECT mean("{metric}") FROM "{device_type}" WHERE {_where()} '
            'GROUP BY time($__interval), "device_id" fill(none)'
        )
        lines = [lim.describe() for lim in own]
        note = "Rule limits: " + "; ".join(lines) if lines else "No rule watches this value."
        return panels.series(
            title,
            [InfluxQL(query, alias="$tag_device_id")],
            unit=unit_of(metric),
            steps=steps(own),
            description=note,
        )
    query = (
        f'SELECT last("{metric}") FROM "{device_type}" WHERE {_where()} '
        'GROUP BY time($__interval), "device_id" fill(previous)'
    )
    described = "true / false" if kind == BOOL else " / ".join(kind)
    return panels.states(title, [InfluxQL(query, alias="$tag_device_id")], description=described)


def _rule_notes(catalogue: Catalogue, device_types: tuple[str, ...]) -> str:
    notes = []
    for device_type in device_types:
        for rule in catalogue.for_type(device_type):
            condition = rule.when.source if rule.when is not None else f"event {rule.event}"
            notes.append(f"{rule.id} ({rule.severity.value}): {condition}")
    return "Rules: " + "; ".join(notes)


def equipment_dashboard(catalogue: Catalogue, equipment: Equipment) -> model.Dashboard:
    """The dashboard of one kind of equipment."""
    types = equipment.device_types
    of_types = f' AND "device_type" =~ /^({"|".join(types)})$/'
    measurements = ", ".join(f'"{t}"' for t in types)
    built = (
        dashboard(equipment.uid, equipment.title, equipment.description, list(types), multi_site=False)
        .with_variable(
            tag_variable(
                "device",
                "Device",
                f'SHOW TAG VALUES FROM {measurements} WITH KEY = "device_id" WHERE {SITE}',
                multi=True,
            )
        )
        .annotation(alarms_annotation(of_types + f" AND {DEVICE}"))
        .annotation(tickets_annotation(f" AND {DEVICE}"))
        .with_row(board.Row("Alarms"))
        .with_panel(
            panels.bars(
                "Alarms raised by rule",
                [
                    InfluxQL(
                        f'SELECT count("title") FROM "alarms" WHERE {_where(of_types)} '
                        'AND "state" = \'raised\' GROUP BY "rule"',
                        alias="$tag_rule",
                    )
                ],
                description=_rule_notes(catalogue, types),
                width=8,
            )
        )
        .with_panel(
            panels.rows(
                "Latest alarms",
                InfluxQL(
                    'SELECT "state", "class", "rule", "device_id", "title", "ticket_id" FROM "alarms" '
                    f"WHERE {_where(of_types)} ORDER BY time DESC LIMIT 200",
                    result_format="table",
                ),
                width=16,
            )
        )
    )
    for device_type in types:
        built = built.with_row(board.Row(device_type))
        if DEVICE_TYPES[device_type].events:
            of_type = f" AND \"device_type\" = '{device_type}'"
            built = built.with_panel(
                panels.rows(
                    f"{device_type} · events",
                    InfluxQL(
                        'SELECT "code", "state", "device_id", "detail" FROM "events" '
                        f"WHERE {_where(of_type)} ORDER BY time DESC LIMIT 200",
                        result_format="table",
                    ),
                    height=6,
                )
            )
        for metric in DEVICE_TYPES[device_type].metrics:
            built = built.with_panel(metric_panel(catalogue, device_type, metric))
    return finish(built.build())
