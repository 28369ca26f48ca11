"""The generated dashboards: committed JSON equal to a fresh generation; rule limits as thresholds."""

from __future__ import annotations

import ast
import json
from pathlib import Path

from grafana.dashboards import FOLDER, all_dashboards, write
from grafana.thresholds import comparisons, limits, steps
from rules.catalogue import default_rules_path, load_rules


def test_regenerating_gives_the_committed_json(tmp_path: Path) -> None:
    write(tmp_path)
    fresh = {p.name: p.read_text() for p in tmp_path.glob("*.json")}
    committed = {p.name: p.read_text() for p in FOLDER.glob("*.json")}
    assert sorted(fresh) == sorted(committed), "run: python -m grafana.dashboards"
    for name, text in fresh.items():
        assert committed[name] == text, f"{name} differs; run: python -m grafana.dashboards"


def test_every_dashboard_has_a_uid_unique_panel_ids_and_the_influx_datasource() -> None:
    for name, dashboard in all_dashboards().items():
        doc = json.loads((FOLDER / name).read_text())
        assert doc["uid"] == dashboard.uid and name == f"{doc['uid']}.json"
        ids = [p["id"] for p in doc["panels"]]
        assert len(ids) == len(set(ids))
        for panel in doc["panels"]:
            for target in panel.get("targets", []):
                assert target["datasource"] == {"type": "influxdb", "uid": "facility-influxdb"}
                assert target["rawQuery"] is True


def test_comparisons_read_either_side_and_rolling_means() -> None:
    assert comparisons("level_pct < 20") == [("level_pct", ast.Lt, 20.0)]
    metric, op, value = comparisons("100 <= co_mgm3")[0]
    assert (metric, op.__name__, value) == ("co_mgm3", "GtE", 100.0)
    assert comparisons("mean(co2_ppm, '1h') > 1000")[0][0] == "co2_ppm"
    assert comparisons("occupied and not moving and door == 'closed'") == []


def test_steps_colour_each_band_by_its_worst_rule() -> None:
    rules = load_rules(default_rules_path())
    sump = [lim for lim in limits(rules, "sump_pit") if lim.metric == "level_pct"]
    assert steps(sump) == [(None, "green"), (80.0, "orange"), (95.0, "red")]
    tank = [lim for lim in limits(rules, "water_tank") if lim.metric == "level_pct"]
    assert steps(tank) == [(None, "orange"), (20.0, "green")]
    pressure = [lim for lim in limits(rules, "sprinkler_pipe") if lim.metric == "pressure_mpa"]
    assert steps(pressure) == [(None, "orange"), (0.05, "green"), (1.2, "orange")]


def test_the_panels_follow_the_rules_file() -> None:
    text = default_rules_path().read_text().replace('when: "level_pct >= 80"', 'when: "level_pct >= 70"')
    water = all_dashboards(load_rules(text))["facility-water.json"]
    sump = next(p for p in water.panels or [] if getattr(p, "title", "") == "sump_pit · level_pct")
    doc = json.loads(json.dumps(sump.to_json(), default=lambda o: o.to_json()))
    values = [s["value"] for s in doc["fieldConfig"]["defaults"]["thresholds"]["steps"]]
    assert values == [None, 70.0, 95.0]


def test_the_quality_dashboard_counts_by_equipment_type_and_says_whose_targets() -> None:
    doc = json.loads((FOLDER / "facility-tickets.json").read_text())
    assert "Acknowledge targets are the contract's" in doc["description"]
    assert "resolve targets are the product's own" in doc["description"]
    panels = {p["title"]: p for p in doc["panels"]}
    [by_type] = panels["Opened by equipment type"]["targets"]
    assert 'GROUP BY "device_type"' in by_type["query"]
    assert "contract" in panels["Time to acknowledge by class"]["description"]
    assert "product's own" in panels["Time to resolve by class"]["description"]
    assert 'percentile("seconds_to_resolve", 90)' in panels["Time to resolve by class"]["targets"][0]["query"]
