"""The `facility` command: each subcommand builds settings and calls one component's `run`."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from facility import gateway_command, report_command, users_command
from grafana import command as grafana_command
from ground.allocator import return_large_blocks, share_arenas
from ground.datalock import DataDirInUse
from ground.settings import Settings

DEMO_FAULTS_PER_H = 6.0


def _positive(value: str) -> float:
    number = float(value)
    if number <= 0:
        raise argparse.ArgumentTypeError(f"{value} is not > 0")
    return number


def _add_simulation_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sites", type=int, default=1, help="number of sites to simulate (default 1)")
    p.add_argument(
        "--rate",
        type=_positive,
        default=20.0,
        help="device reports per second across the fleet (default 20)",
    )
    p.add_argument(
        "--duration",
        type=_positive,
        default=None,
        metavar="SECONDS",
        help="stop after this many seconds (default: run until Ctrl-C)",
    )
    p.add_argument("--seed", type=int, default=1, help="same seed, same messages (default 1)")
    p.add_argument(
        "--faults",
        type=float,
        default=0.0,
        metavar="PER_HOUR",
        help=f"random faults per device per hour of device time (default 0; demo {DEMO_FAULTS_PER_H:g})",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="facility", description="IoT facility monitoring for property management."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("collector", help="collect MQTT messages into the time-series store")
    sim = sub.add_parser("simulate", help="publish simulated devices to FACILITY_MQTT_URL")
    _add_simulation_args(sim)
    sim.add_argument(
        "--start",
        type=int,
        default=None,
        metavar="EPOCH_MS",
        help="device time of the first report (default: now)",
    )
    sim.add_argument(
        "--scenario",
        type=Path,
        default=None,
        metavar="FILE",
        help="play a fault scenario (YAML) instead of the fleet; see simulators/scenarios/",
    )
    sim.add_argument(
        "--speed",
        type=float,
        default=0.0,
        help="with --scenario: device seconds per wall second (default 0: as fast as possible)",
    )
    demo = sub.add_parser("demo", help="embedded broker, the whole service and simulators in one process")
    _add_simulation_args(demo)
    # A demo should show faults becoming tickets within minutes.
    demo.set_defaults(faults=DEMO_FAULTS_PER_H)
    demo.add_argument(
        "--mqtt-port",
        type=int,
        default=1883,
        help="port of the embedded broker (default 1883, or a free one)",
    )
    demo.add_argument("--port", type=int, default=8000, help="API port (default 8000, or a free one)")
    demo.add_argument(
        "--gateway",
        action="store_true",
        help="also a second site whose pump room (Modbus) and fire panel (GB/T 26875.3) reach a gateway",
    )
    query = sub.add_parser("query", help="print one field of stored readings")
    query.add_argument("measurement", help="a device type, or events / status")
    query.add_argument("field", help="a metric name, e.g. floor")
    query.add_argument("--site")
    query.add_argument("--device")
    query.add_argument("--minutes", type=_positive, default=60.0, help="how far back (default 60)")
    query.add_argument(
        "--every",
        type=int,
        default=None,
        metavar="SECONDS",
        help="aggregate into buckets of this many seconds (mean)",
    )
    serve = sub.add_parser("serve", help="collector, rules, tickets, timers and the API in one process")
    serve.add_argument("--host", default="127.0.0.1", help="API address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="API port (default 8000)")
    rules = sub.add_parser("rules", help="work with rules files")
    rules_sub = rules.add_subparsers(dest="rules_command", required=True)
    check = rules_sub.add_parser("check", help="validate a rules file as the service would at start-up")
    check.add_argument("file", type=Path)
    maintenance = sub.add_parser("maintenance", help="maintenance plans and contractors")
    maintenance_sub = maintenance.add_subparsers(dest="maintenance_command", required=True)
    load = maintenance_sub.add_parser(
        "load", help="load plans and contractors from a YAML file; nothing is loaded while a problem remains"
    )
    load.add_argument("file", type=Path)
    dead = sub.add_parser("dead-letters", help="print the newest dead letters as JSON lines")
    dead.add_argument("--limit", type=int, default=20)
    _add_patrol_parser(sub)
    grafana_command.add_parser(sub)
    users_command.add_parser(sub)
    gateway_command.add_parser(sub)
    report_command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `facility` command."""
    args = _parser().parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as exc:
        print(f"facility: invalid settings:\n{exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    quiet_libraries(settings.log_level)
    if args.command in ("serve", "collector", "demo"):
        # What these write (readings, tickets, API tokens' hashes) is for the service's user alone.
        os.umask(0o077)
        return_large_blocks()
        share_arenas()
    if args.command == "rules":
        return _check_rules(args.file)
    if args.command == "maintenance":
        return _load_maintenance(args.file, settings)
    if args.command == "grafana":
        return grafana_command.run(args, settings)
    if args.command == "users":
        os.umask(0o077)
        return users_command.run(args, settings)
    if args.command == "patrol":
        return _patrol_walk(args, settings)
    if args.command == "gateway":
        return gateway_command.run(args, settings)
    if args.command == "report":
        return report_command.run(args, settings)
    try:
        if args.command == "collector":
            from collector import app

            app.run(settings)
        elif args.command == "serve":
            from facility import service

            service.run(settings, args.host, args.port)
        elif args.command in ("simulate", "demo"):
            return _simulate_or_demo(args, settings)
    except DataDirInUse as exc:
        print(f"facility: {exc}", file=sys.stderr)
        return 1
    if args.command == "query":
        _query(args, settings)
    elif args.command == "dead-letters":
        from collector.inbox import Inbox

        inbox = Inbox(settings.inbox_path)
        for letter in inbox.dead_letters(args.limit):
            print(json.dumps(letter, ensure_ascii=False))
        inbox.close()
    return 0


# Libraries whose INFO lines (a broker's every connection, each state transition, migrations, each
# timer run) would bury the service's own; shown with FACILITY_LOG_LEVEL=DEBUG.
CHATTY_LIBRARIES = (
    "amqtt",
    "transitions",
    "alembic",
    "apscheduler",
    "httpx",
    "urllib3",
    "grafana_client",
    "pymodbus",
    "bacpypes3",
)


def quiet_libraries(level: str) -> None:
    """Third-party loggers at WARNING unless the service logs at DEBUG."""
    if level != "DEBUG":
        for name in CHATTY_LIBRARIES:
            logging.getLogger(name).setLevel(logging.WARNING)


def _check_rules(path: Path) -> int:
    from rules.catalogue import check_file

    problems = check_file(path)
    for problem in problems:
        print(f"{path}: {problem}", file=sys.stderr)
    if problems:
        return 1
    print(f"{path}: ok")
    return 0


def _load_maintenance(path: Path, settings: Settings) -> int:
    """`facility maintenance load FILE`: 1 with every problem on stderr when the file cannot be loaded."""
    from zoneinfo import ZoneInfo

    from maintenance.service import MaintenanceService, PlanFileError
    from records.db import Database, database_url, migrate
    from tickets.service import TicketService

    db = Database(database_url(settings.database_url, settings.data_dir))
    try:
        migrate(db.engine)
        service = MaintenanceService(db, TicketService(db), zone=ZoneInfo(settings.timezone))
        contractors, plans, new = service.load_file(path)
    except OSError as exc:
        print(f"facility maintenance: {path}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except PlanFileError as exc:
        for problem in exc.problems:
            print(f"{path}: {problem}", file=sys.stderr)
        return 1
    finally:
        db.close()
    print(f"{path}: loaded {contractors} contractors and {plans} plans ({new} new)")
    return 0


def _simulate_or_demo(args: argparse.Namespace, settings: Settings) -> int:
    from collector.app import stop_on_signals
    from simulators import publisher

    plan = publisher.SimulationPlan(
        sites=args.sites,
        rate=args.rate,
        duration_s=args.duration,
        seed=args.seed,
        fault_rate_per_h=args.faults,
        start_ms=getattr(args, "start", None),
    )
    stop = stop_on_signals()
    if args.command == "demo":
        from facility import demo

        demo.run(settings, plan, stop, port=args.mqtt_port, api_port=args.port, gateway=args.gateway)
    elif args.scenario is not None:
        from simulators import scenario

        try:
            story = scenario.load(args.scenario)
            sent = scenario.run(settings.mqtt, story, stop, speed=args.speed, start_ms=args.start)
        except (scenario.ScenarioError, ConnectionError) as exc:
            print(f"facility: {exc}", file=sys.stderr)
            return 2
        print(f"{story.name}: {sent} messages sent")
    else:
        publisher.run(settings.mqtt, plan, stop)
    return 0


def _query(args: argparse.Namespace, settings: Settings) -> None:
    from collector.stores.factory import open_store

    store = open_store(settings)
    end = int(time.time() * 1000) + 60_000
    rows = store.query(
        args.measurement,
        args.field,
        end - int(args.minutes * 60_000),
        end,
        site=args.site,
        device_id=args.device,
        every_s=args.every,
    )
    for t, value in rows:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t / 1000))
        print(f"{stamp}.{t % 1000:03d}  {value}")
    store.close()


class _FindingArg(argparse.Action):
    """`--finding CHECKPOINT TEXT [DEVICE_ID]`, repeatable: each use appends its two or three values."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        if not isinstance(values, list) or not 2 <= len(values) <= 3:
            parser.error(f"{option_string}: expected CHECKPOINT TEXT [DEVICE_ID]")
        # A new list each time: the default list belongs to the parser.
        setattr(namespace, self.dest, [*getattr(namespace, self.dest), values])


def _add_patrol_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    patrol = sub.add_parser("patrol", help="guard tour (電子巡更) tools")
    patrol_sub = patrol.add_subparsers(dest="patrol_command", required=True)
    walk = patrol_sub.add_parser(
        "walk", help="a guard walks a patrol round: publish their reader's scans and findings"
    )
    walk.add_argument("--api", default="http://127.0.0.1:8000", help="API base URL (default %(default)s)")
    walk.add_argument("--token", default=None, help="bearer token (default: FACILITY_ADMIN_TOKEN)")
    walk.add_argument("--round", type=int, required=True, metavar="ID", help="the patrol round to walk")
    walk.add_argument("--reader", default=None, help="reader device id (default: reader-<guard>)")
    walk.add_argument(
        "--late", type=float, default=0.0, metavar="SECONDS", help="added to every scan's due time"
    )
    walk.add_argument(
        "--jitter", type=float, default=0.0, metavar="SECONDS", help="each scan moves by up to ± this"
    )
    walk.add_argument(
        "--skip", nargs="+", action="extend", default=[], metavar="CHECKPOINT", help="not scanned"
    )
    walk.add_argument(
        "--swap", nargs=2, default=None, metavar=("CP_A", "CP_B"), help="walked in each other's place"
    )
    walk.add_argument("--repeat", action="store_true", help="read every tag twice, 10 s apart")
    walk.add_argument(
        "--finding",
        nargs="+",
        action=_FindingArg,
        default=[],
        metavar=("CHECKPOINT", "TEXT"),
        help="CHECKPOINT TEXT [DEVICE_ID]: report a problem 30 s after scanning there (repeatable)",
    )
    walk.add_argument("--seed", type=int, default=1, help="same seed, same jitter (default 1)")
    walk.add_argument(
        "--seq-start",
        type=int,
        default=0,
        metavar="N",
        help="first seq of the reader's events (default 0); walking an earlier round again as the "
        "same reader needs a higher one, or the service drops the events as duplicates",
    )
    when = walk.add_mutually_exclusive_group()
    when.add_argument(
        "--offline-upload-after",
        type=_positive,
        default=None,
        metavar="SECONDS",
        help="an offline reader: publish everything after this many seconds of wall time",
    )
    when.add_argument("--realtime", action="store_true", help="publish each event at its device time")


def _patrol_walk(args: argparse.Namespace, settings: Settings) -> int:
    from collector.app import stop_on_signals
    from simulators import patrol

    walk = patrol.Walk(
        late_s=args.late,
        jitter_s=args.jitter,
        skip=frozenset(args.skip),
        swap=(args.swap[0], args.swap[1]) if args.swap else None,
        repeat=args.repeat,
        findings=[patrol.Finding(*values) for values in args.finding],
        seed=args.seed,
    )
    try:
        sent = patrol.walk_round(
            settings.mqtt,
            args.api,
            args.token or settings.admin_token,
            args.round,
            walk,
            args.reader,
            start_seq=args.seq_start,
            upload_after_s=args.offline_upload_after or 0.0,
            realtime=args.realtime,
            stop=stop_on_signals(),
        )
    except (patrol.WalkError, patrol.RoundError, ConnectionError, TimeoutError) as exc:
        print(f"facility: {exc}", file=sys.stderr)
        return 2
    print(f"round {args.round}: {sent} events published")
    return 0


def run() -> int:
    """Console entry point: `main`, quiet when its output pipe closes early (`| head`)."""
    try:
        return main()
    except BrokenPipeError:
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(run())
