"""What every facility dashboard has: the site variable, alarm and ticket annotations, links, ids."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as board
from grafana_foundation_sdk.models import dashboard as model

from grafana.influxql import Annotation, tag_is, tag_variable

TAG = "facility"
SITE = tag_is("site", "site")
SEVERITY_COLOURS = {"routine": "yellow", "major": "orange", "emergency": "red"}


def alarms_annotation(extra_where: str = "") -> Annotation:
    """Alarms raised and cleared, as annotations (text: the alarm's title)."""
    where = f"{SITE}{extra_where} AND $timeFilter"
    query = f'SELECT "title", "state", "device_id", "rule", "class" FROM "alarms" WHERE {where}'
    return Annotation("Alarms", query, "red", "title", "state,device_id,rule,class")


def tickets_annotation(extra_where: str = "") -> Annotation:
    """Ticket changes (opened, acknowledged, resolved ...), as annotations."""
    where = f"{SITE}{extra_where} AND $timeFilter"
    query = f'SELECT "title", "change", "class", "ticket_id" FROM "tickets" WHERE {where}'
    return Annotation("Ticket changes", query, "blue", "title", "change,class,ticket_id")


def dashboard(
    uid: str, title: str, description: str, site_from: list[str], *, multi_site: bool
) -> board.Dashboard:
    """A dashboard of the facility folder with its site variable, the last 24 h and a 1 min refresh."""
    measurements = ", ".join(f'"{m}"' for m in site_from)
    return (
        board.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags([TAG])
        .time("now-24h", "now")
        .timezone("browser")
        .refresh("1m")
        .readonly()
        .tooltip(model.DashboardCursorSync.CROSSHAIR)
        .link(
            board.DashboardLink("Facility dashboards")
            .type(model.DashboardLinkType.DASHBOARDS)
            .tags([TAG])
            .as_dropdown(True)
            .include_vars(True)
            .keep_time(True)
        )
        .with_variable(
            tag_variable(
                "site", "Site", f'SHOW TAG VALUES FROM {measurements} WITH KEY = "site"', multi=multi_site
            )
        )
    )


def finish(built: model.Dashboard) -> model.Dashboard:
    """Number the panels in order, so that links to a panel (viewPanel=N) stay stable."""
    for number, panel in enumerate(built.panels or [], start=1):
        panel.id_val = number
    return built
