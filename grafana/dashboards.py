"""Every facility dashboard, generated as Grafana JSON: `python -m grafana.dashboards [FOLDER]`.

The committed files under grafana/dashboards/ are this module's output; a test regenerates them
and fails on any difference. Rule limits come from the shipped rules file, so they follow it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path

from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as model

from grafana.equipment import EQUIPMENT, equipment_dashboard
from grafana.operations import overview, patrols, tickets
from rules.catalogue import Catalogue, default_rules_path, load_rules

FOLDER = Path(__file__).resolve().parent / "dashboards"


def all_dashboards(catalogue: Catalogue | None = None) -> dict[str, model.Dashboard]:
    """File name → dashboard, for every dashboard."""
    rules = catalogue or load_rules(default_rules_path())
    makers: list[Callable[[], model.Dashboard]] = [overview]
    makers += [partial(equipment_dashboard, rules, e) for e in EQUIPMENT]
    makers += [patrols, tickets]
    built = [make() for make in makers]
    return {f"{d.uid}.json": d for d in built}


def render(dashboard: model.Dashboard) -> str:
    """The dashboard as Grafana JSON, stable from run to run."""
    return json.dumps(dashboard, cls=JSONEncoder, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write(folder: Path = FOLDER) -> list[Path]:
    """Write every dashboard into `folder`, and remove generated files no longer made."""
    folder.mkdir(parents=True, exist_ok=True)
    rendered = {name: render(d) for name, d in all_dashboards().items()}
    for stale in folder.glob("facility-*.json"):
        if stale.name not in rendered:
            stale.unlink()
    paths = []
    for name, text in sorted(rendered.items()):
        path = folder / name
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    """Write the dashboards into the folder given, or grafana/dashboards/ of the repository."""
    args = sys.argv[1:] if argv is None else argv
    for path in write(Path(args[0]) if args else FOLDER):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
