"""`facility grafana generate|push`: argument parsing here, the work in dashboards.py and push.py."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ground.settings import Settings


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `grafana generate` and `grafana push` to the command's subcommands."""
    grafana = sub.add_parser("grafana", help="Grafana dashboards: generate the JSON, push into a Grafana")
    grafana_sub = grafana.add_subparsers(dest="grafana_command", required=True)
    generate = grafana_sub.add_parser("generate", help="write the dashboards' JSON (grafana/dashboards/)")
    generate.add_argument("folder", type=Path, nargs="?", default=None)
    push = grafana_sub.add_parser("push", help="upload the data source and every dashboard into a Grafana")
    push.add_argument("--url", required=True, help="Grafana's base URL, e.g. http://grafana.example:3000")
    push.add_argument(
        "--token",
        default=os.environ.get("GRAFANA_TOKEN"),
        help="a Grafana service account token with the Admin role (default: $GRAFANA_TOKEN)",
    )
    push.add_argument(
        "--influx-url",
        default=None,
        help="InfluxDB's URL as Grafana reaches it (default: FACILITY_INFLUX_URL, else http://localhost:8086)",
    )
    push.add_argument(
        "--database",
        default=None,
        help="InfluxQL database (default: FACILITY_INFLUX_BUCKET; with the v1 API FACILITY_INFLUX_DATABASE)",
    )
    push.add_argument(
        "--influx-token",
        default=None,
        help="InfluxDB token Grafana sends, read access is enough (default: FACILITY_INFLUX_TOKEN)",
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run `facility grafana ...`."""
    if args.grafana_command == "generate":
        from grafana import dashboards

        return dashboards.main([str(args.folder)] if args.folder else [])
    if not args.token:
        print("facility: grafana push needs --token or GRAFANA_TOKEN", file=sys.stderr)
        return 2
    from grafana_client.client import GrafanaException
    from requests import RequestException

    from grafana import push

    v1 = settings.influx_api == "v1"
    source = push.InfluxSource(
        url=args.influx_url or settings.influx_url or "http://localhost:8086",
        database=args.database or (settings.influx_database if v1 else settings.influx_bucket),
        token=args.influx_token if args.influx_token is not None else settings.influx_token,
        username=settings.influx_username if v1 else None,
        password=settings.influx_password if v1 else None,
    )
    try:
        for line in push.push(push.connect(args.url, args.token), source):
            print(line)
    except (GrafanaException, RequestException) as exc:
        print(f"facility: grafana push to {args.url} failed: {exc}", file=sys.stderr)
        return 1
    return 0
