"""The dashboards of the whole operation: site overview, patrols, and tickets against their targets."""

from __future__ import annotations

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model

from grafana import panels
from grafana.frame import (
    SEVERITY_COLOURS,
    SITE,
    alarms_annotation,
    dashboard,
    finish,
    tickets_annotation,
)
from grafana.influxql import InfluxQL, tag_is, tag_variable

WHERE = f"{SITE} AND $timeFilter"
BY_TIME = "GROUP BY time($__interval)"
# Patrol statuses are fields, not tags (a late upload replaces a round's point): counted by WHERE.
CHECKPOINT_COLOURS = {
    "on_time": "green",
    "early": "blue",
    "late": "orange",
    "missed": "red",
    "wrong_order": "purple",
}
ALARM_CLASSES = ", ".join(f'last("alarms_{c}") AS "{c}"' for c in SEVERITY_COLOURS)


def overview() -> model.Dashboard:
    """Per site: devices online and offline, open alarms by class, readings per minute, dead letters."""
    status = f'FROM "site_status" WHERE {WHERE}'
    counters = 'FROM "service_status" WHERE $timeFilter'
    built = (
        dashboard(
            "facility-overview",
            "Overview",
            "Per site: devices online and offline, open alarms by class, readings per minute; "
            "the pipeline's dead letters, losses and duplicates.",
            ["site_status"],
            multi_site=True,
        )
        .annotation(alarms_annotation())
        .annotation(tickets_annotation())
        .with_panel(
            panels.single(
                "Devices online",
                [InfluxQL(f'SELECT last("devices_online") {status} GROUP BY "site"', alias="$tag_site")],
            )
        )
        .with_panel(
            panels.single(
                "Devices offline",
                [InfluxQL(f'SELECT last("devices_offline") {status} GROUP BY "site"', alias="$tag_site")],
                steps=((None, "green"), (1.0, "orange")),
            )
        )
        .with_panel(
            panels.single(
                "Open alarms",
                # Per site: the sites' points share a time, so last() over all would mix them.
                [InfluxQL(f'SELECT {ALARM_CLASSES} {status} GROUP BY "site"', alias="$tag_site $col")],
                steps=((None, "green"), (1.0, "orange")),
                width=8,
            )
        )
        .with_panel(
            panels.single(
                "Open tickets",
                [InfluxQL(f'SELECT last("tickets_open") {status} GROUP BY "site"', alias="$tag_site")],
            )
        )
        .with_panel(
            panels.single(
                "Store up",
                [InfluxQL(f'SELECT last("store_up") {counters}')],
                steps=((None, "red"), (1.0, "green")),
                description="1: the time-series store takes writes; 0: readings wait in the durable buffer.",
            )
        )
        .with_panel(
            panels.series(
                "Devices online and offline",
                [
                    InfluxQL(
                        'SELECT last("devices_online") AS "online", last("devices_offline") AS "offline" '
                        f'{status} {BY_TIME}, "site" fill(none)',
                        alias="$tag_site $col",
                    )
                ],
            )
        )
        .with_panel(
            panels.series(
                "Open alarms by class",
                [
                    InfluxQL(
                        f'SELECT {ALARM_CLASSES} {status} {BY_TIME}, "site" fill(none)',
                        alias="$tag_site $col",
                    )
                ],
                stacked=True,
                colours=SEVERITY_COLOURS,
            )
        )
        .with_panel(
            panels.series(
                "Readings per minute",
                [
                    InfluxQL(
                        f'SELECT mean("readings_per_minute") {status} {BY_TIME}, "site" fill(none)',
                        alias="$tag_site",
                    )
                ],
                description="Messages accepted from each site per minute.",
            )
        )
        .with_panel(
            panels.series(
                "Dead letters, lost and duplicate readings",
                [
                    InfluxQL(
                        'SELECT non_negative_difference(last("dead_letters_total")) AS "dead letters", '
                        'non_negative_difference(last("readings_lost_total")) AS "lost", '
                        'non_negative_difference(last("duplicates_total")) AS "duplicates" '
                        f"{counters} {BY_TIME} fill(none)",
                        alias="$col",
                    )
                ],
                bars=True,
                description="Per interval. Dead letters: messages set aside with their reason (facility "
                "dead-letters, GET /api/v1/dead-letters).",
            )
        )
        .with_panel(
            panels.rows(
                "Latest alarms",
                InfluxQL(
                    'SELECT "state", "class", "site", "device_type", "device_id", "rule", "title", '
                    f'"ticket_id" FROM "alarms" WHERE {WHERE} ORDER BY time DESC LIMIT 200',
                    result_format="table",
                ),
                width=12,
            )
        )
        .with_panel(
            panels.rows(
                "Device status",
                InfluxQL(
                    f'SELECT last("state") AS "state" FROM "status" WHERE {WHERE} '
                    'GROUP BY "site", "device_type", "device_id"',
                    result_format="table",
                ),
                width=12,
                description="The last status each device reported (online, or its offline last will).",
            )
        )
    )
    return finish(built.build())


def patrols() -> model.Dashboard:
    """Patrol rounds completed and incomplete, missed and late checkpoints, SOS and findings."""
    route = tag_is("route", "route")
    rounds = f'FROM "patrol_rounds" WHERE {SITE} AND {route} AND $timeFilter'
    checkpoints = f'FROM "patrol_checkpoints" WHERE {SITE} AND {route} AND $timeFilter'
    built = (
        dashboard(
            "facility-patrols",
            "Patrols",
            "Electronic patrol rounds (manual ch. 5): rounds completed; checkpoints missed, late "
            "or out of order.",
            ["patrol_rounds"],
            multi_site=False,
        )
        .with_variable(
            tag_variable(
                "route",
                "Route",
                f'SHOW TAG VALUES FROM "patrol_rounds" WITH KEY = "route" WHERE {SITE}',
                multi=True,
            )
        )
        .annotation(alarms_annotation(' AND "device_type" =~ /^(patrol_reader|patrol_round|patrol_tag)$/'))
        .annotation(tickets_annotation(" AND \"source\" = 'patrol'"))
        .with_panel(
            panels.single(
                "Rounds completed",
                [InfluxQL(f'SELECT count("round_id") {rounds} AND "status" = \'completed\'')],
            )
        )
        .with_panel(
            panels.single(
                "Rounds incomplete",
                [InfluxQL(f'SELECT count("round_id") {rounds} AND "status" = \'incomplete\'')],
                steps=((None, "green"), (1.0, "orange")),
            )
        )
        .with_panel(
            panels.single(
                "Checkpoints missed",
                [InfluxQL(f'SELECT sum("missed") {rounds}')],
                steps=((None, "green"), (1.0, "red")),
            )
        )
        .with_panel(
            panels.bars(
                "Checkpoints by status",
                [
                    InfluxQL(
                        f'SELECT count("offset_s") AS "{status}" {checkpoints} AND "status" = \'{status}\'',
                        ref_id=ref,
                    )
                    for ref, status in zip("ABCDE", CHECKPOINT_COLOURS, strict=True)
                ],
                colours=CHECKPOINT_COLOURS,
                width=12,
            )
        )
        .with_panel(
            panels.series(
                "Rounds by status",
                [
                    InfluxQL(
                        'SELECT sum("completed") AS "completed", '
                        'count("completed") - sum("completed") AS "incomplete" '
                        f"{rounds} {BY_TIME} fill(none)",
                        alias="$col",
                    )
                ],
                bars=True,
                stacked=True,
                colours={"completed": "green", "incomplete": "orange"},
            )
        )
        .with_panel(
            panels.series(
                "Missed checkpoints by route",
                [
                    InfluxQL(
                        f'SELECT sum("missed") {rounds} {BY_TIME}, "route" fill(none)', alias="$tag_route"
                    )
                ],
                bars=True,
            )
        )
        .with_panel(
            panels.series(
                "Scan time against due time",
                [
                    InfluxQL(
                        f'SELECT mean("offset_s") {checkpoints} AND "status" != \'missed\' '
                        f'{BY_TIME}, "checkpoint" fill(none)',
                        alias="$tag_checkpoint",
                    )
                ],
                unit="s",
                description="Seconds after (positive) or before (negative) each checkpoint's due time.",
            )
        )
        .with_panel(
            panels.rows(
                "Missed and out-of-order checkpoints",
                InfluxQL(
                    'SELECT "round_id", "status", "route", "guard", "checkpoint" '
                    f'{checkpoints} AND "status" =~ /^(missed|wrong_order)$/ ORDER BY time DESC LIMIT 200',
                    result_format="table",
                ),
                width=12,
            )
        )
        .with_panel(
            panels.rows(
                "SOS and findings",
                InfluxQL(
                    'SELECT "code", "device_id", "detail" FROM "events" '
                    f'WHERE {SITE} AND "code" =~ /^(SOS|PATROL_FINDING)$/ AND $timeFilter '
                    "ORDER BY time DESC LIMIT 200",
                    result_format="table",
                ),
                width=12,
            )
        )
    )
    return finish(built.build())


# Which targets are whose: the contract sets the response (acknowledge) times per class; the
# resolve targets are this product's own (ground/severity.py).
TARGET_OWNER = {
    "acknowledge": "the contract's response time for the class",
    "resolve": "the product's own resolve target for the class (the contract sets none)",
}


def _against_target(what: str, change: str, field: str, target: str) -> cogbuilder.Builder[model.Panel]:
    query = (
        f'SELECT "{field}" AS "{what}", "{target}" AS "target" FROM "tickets" '
        f'WHERE {WHERE} AND "change" = \'{change}\' GROUP BY "class"'
    )
    return panels.series(
        f"Time to {what} against the class target",
        [InfluxQL(query, alias="$tag_class $col")],
        unit="s",
        description=f"Each ticket's time to {what} (points) and its target (§9.1): {TARGET_OWNER[what]}.",
    ).draw_style(common.GraphDrawStyle.POINTS)


def _summary(what: str, change: str, field: str, target: str) -> cogbuilder.Builder[model.Panel]:
    # InfluxQL's percentile() is the nearest-rank one, as GET /api/v1/reports/quality states.
    query = (
        f'SELECT count("{field}") AS "tickets", median("{field}") AS "median", '
        f'percentile("{field}", 90) AS "p90", max("{field}") AS "longest", '
        f'last("{target}") AS "target" FROM "tickets" WHERE {WHERE} '
        f'AND "change" = \'{change}\' GROUP BY "class"'
    )
    return panels.rows(
        f"Time to {what} by class",
        InfluxQL(query, result_format="table"),
        width=12,
        height=6,
        description=f"Seconds: median and 90th percentile (nearest rank). Target: {TARGET_OWNER[what]}.",
    )


def tickets() -> model.Dashboard:
    """Tickets opened by class and source, times to acknowledge and resolve against the class targets."""
    changes = f'FROM "tickets" WHERE {WHERE}'
    built = (
        dashboard(
            "facility-tickets",
            "Tickets and quality",
            "Tickets opened by class, source and equipment type; time to acknowledge and to resolve "
            "against the class targets (manual §9.1). Acknowledge targets are the contract's response "
            "times (emergency 5 min, major 30 min, routine 24 h); resolve targets are the product's own "
            "(4 h, 24 h, 72 h). The monthly report (console: Quality; GET /api/v1/reports/quality) "
            "gives the same figures with the share within target, repeat faults and satisfaction.",
            ["tickets"],
            multi_site=True,
        )
        .annotation(tickets_annotation())
        .with_panel(
            panels.bars(
                "Opened by class",
                [
                    InfluxQL(
                        f'SELECT count("ticket_id") {changes} AND "change" = \'opened\' GROUP BY "class"',
                        alias="$tag_class",
                    )
                ],
                colours=SEVERITY_COLOURS,
                width=8,
            )
        )
        .with_panel(
            panels.bars(
                "Opened by source",
                [
                    InfluxQL(
                        f'SELECT count("ticket_id") {changes} AND "change" = \'opened\' GROUP BY "source"',
                        alias="$tag_source",
                    )
                ],
                width=8,
            )
        )
        .with_panel(
            panels.bars(
                "Opened by equipment type",
                [
                    InfluxQL(
                        f'SELECT count("ticket_id") {changes} AND "change" = \'opened\' '
                        'GROUP BY "device_type"',
                        alias="$tag_device_type",
                    )
                ],
                width=8,
            )
        )
        .with_panel(
            panels.single(
                "Open tickets",
                [
                    InfluxQL(
                        f'SELECT last("tickets_open") FROM "site_status" WHERE {WHERE} GROUP BY "site"',
                        alias="$tag_site",
                    )
                ],
                width=8,
            )
        )
        .with_panel(
            panels.series(
                "Opened by class",
                [
                    InfluxQL(
                        f'SELECT count("ticket_id") {changes} AND "change" = \'opened\' '
                        f'{BY_TIME}, "class" fill(none)',
                        alias="$tag_class",
                    )
                ],
                bars=True,
                stacked=True,
                colours=SEVERITY_COLOURS,
                width=24,
            )
        )
        .with_panel(_summary("acknowledge", "acknowledged", "seconds_to_acknowledge", "target_acknowledge_s"))
        .with_panel(_summary("resolve", "resolved", "seconds_to_resolve", "target_resolve_s"))
        .with_panel(
            _against_target("acknowledge", "acknowledged", "seconds_to_acknowledge", "target_acknowledge_s")
        )
        .with_panel(_against_target("resolve", "resolved", "seconds_to_resolve", "target_resolve_s"))
        .with_panel(
            panels.series(
                "Maintenance on plan",
                [
                    InfluxQL(
                        f'SELECT mean("on_plan") * 100 FROM "work_orders" WHERE {WHERE} '
                        f'{BY_TIME}, "device_type" fill(none)',
                        alias="$tag_device_type",
                    )
                ],
                unit="percent",
                width=24,
                description="Work orders done by their due day, in % of those done, by equipment type "
                "(manual §4.1; the product's own figure). GET /api/v1/maintenance/figures also counts "
                "those not done.",
            )
        )
        .with_panel(
            panels.rows(
                "Latest ticket changes",
                InfluxQL(
                    'SELECT "ticket_id", "change", "class", "source", "site", "device_id", "title" '
                    f"{changes} ORDER BY time DESC LIMIT 200",
                    result_format="table",
                ),
            )
        )
    )
    return finish(built.build())
