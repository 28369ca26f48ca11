"""Panel shapes the dashboards share, built with the foundation SDK and InfluxQL targets."""

from __future__ import annotations

from collections.abc import Sequence

from grafana_foundation_sdk.builders import bargauge, stat, statetimeline, table, timeseries
from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as board
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model

from grafana.influxql import DATASOURCE, InfluxQL

Steps = Sequence[tuple[float | None, str]]


def _thresholds(steps: Steps) -> board.ThresholdsConfig:
    return (
        board.ThresholdsConfig()
        .mode(model.ThresholdsMode.ABSOLUTE)
        .steps([model.Threshold(value=value, color=colour) for value, colour in steps])
    )


def _last_value() -> common_builders.ReduceDataOptions:
    return common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False)


def _colour(name: str, colour: str) -> tuple[str, list[model.DynamicConfigValue]]:
    return name, [model.DynamicConfigValue(id_val="color", value={"mode": "fixed", "fixedColor": colour})]


def series(
    title: str,
    targets: Sequence[InfluxQL],
    *,
    unit: str = "short",
    steps: Steps = (),
    description: str = "",
    bars: bool = False,
    stacked: bool = False,
    colours: dict[str, str] | None = None,
    width: int = 12,
) -> timeseries.Panel:
    """A time series; rule limits, when given, drawn as dashed lines with coloured bands."""
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .targets(list(targets))
        .unit(unit)
        .span(width)
        .height(8)
        .legend(
            common_builders.VizLegendOptions().show_legend(True).display_mode(common.LegendDisplayMode.LIST)
        )
    )
    if steps:
        panel = panel.thresholds(_thresholds(steps)).thresholds_style(
            common_builders.GraphThresholdsStyleConfig().mode(common.GraphTresholdsStyleMode.DASHED_AND_AREA)
        )
    if bars:
        panel = panel.draw_style(common.GraphDrawStyle.BARS).fill_opacity(80)
    if stacked:
        panel = panel.stacking(common_builders.StackingConfig().mode(common.StackingMode.NORMAL))
    for name, colour in (colours or {}).items():
        panel = panel.override_by_name(*_colour(name, colour))
    return panel


def states(
    title: str, targets: Sequence[InfluxQL], *, description: str = "", width: int = 12
) -> statetimeline.Panel:
    """A state timeline for booleans and enumerations (door, moving, breaker tripped ...)."""
    return (
        statetimeline.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .targets(list(targets))
        .span(width)
        .height(6)
        .show_value(common.VisibilityMode.AUTO)
        .merge_values(True)
    )


def single(
    title: str,
    targets: Sequence[InfluxQL],
    *,
    steps: Steps = ((None, "green"),),
    unit: str = "short",
    description: str = "",
    width: int = 4,
) -> stat.Panel:
    """One big number: the latest value of each series."""
    return (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .targets(list(targets))
        .unit(unit)
        .span(width)
        .height(4)
        .thresholds(_thresholds(steps))
        .reduce_options(_last_value())
        .graph_mode(common.BigValueGraphMode.NONE)
        .color_mode(common.BigValueColorMode.BACKGROUND)
    )


def bars(
    title: str,
    targets: Sequence[InfluxQL],
    *,
    colours: dict[str, str] | None = None,
    unit: str = "short",
    description: str = "",
    width: int = 6,
) -> bargauge.Panel:
    """Horizontal bars, one per series (counts by class, by rule, by status)."""
    panel = (
        bargauge.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .targets(list(targets))
        .unit(unit)
        .span(width)
        .height(8)
        .reduce_options(_last_value())
        .orientation(common.VizOrientation.HORIZONTAL)
        .display_mode(common.BarGaugeDisplayMode.BASIC)
        .thresholds(_thresholds(((None, "blue"),)))
    )
    for name, colour in (colours or {}).items():
        panel = panel.override_by_name(*_colour(name, colour))
    return panel


def rows(
    title: str, target: InfluxQL, *, description: str = "", width: int = 24, height: int = 8
) -> table.Panel:
    """A table of raw rows (latest alarms, ticket changes, missed checkpoints)."""
    return (
        table.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .with_target(target)
        .span(width)
        .height(height)
    )
