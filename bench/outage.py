"""An outage of 10,000 devices: tickets opened per site in the next 10 minutes, and how soon the incident.

In process, on a real records database (an SQLite file, or `--database-url` for PostgreSQL): the
pipeline `facility serve` runs (contract decoding, the rules engine with the default rules,
tickets), with its timer driven on a simulated clock, one tick a second, so that ten minutes of
outage take what the work takes and no more. Every device reports once (devices of the contract's
types in turn, across `--sites` sites), then the feed stops. For each site it prints the tickets
opened in the 10 minutes after the feed stopped, when (simulated) the outage incident opened, and
the wall time the pipeline spent recording the offline alarms.

    python -m bench.outage [--devices 10000] [--sites 10] [--database-url URL]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

from collector.inbox import DeadLetter
from collector.lineprotocol import Point
from facility.pipeline import Pipeline
from ground.clock import from_ms
from ground.contract import DEVICE_TYPES, decode
from records.db import Database, migrate
from records.devices import DeviceDirectory
from rules.catalogue import default_rules_path, load_rules
from rules.engine import Engine
from tickets.notify import Dispatcher
from tickets.service import TicketFilter, TicketService

START_MS = 1_795_749_124_000
BATCH = 2_000  # the collector hands the pipeline up to this many messages at once
TYPES = sorted(t for t in DEVICE_TYPES if t != "patrol_reader")


def run(devices: int, sites: int, url: str) -> None:
    """Report once, stop, tick for ten minutes of simulated time, and print the figures."""
    db = Database(url)
    migrate(db.engine)
    sim = [START_MS]
    tickets = TicketService(db, clock=lambda: from_ms(sim[0]))
    points: list[Point] = []
    dead: list[DeadLetter] = []
    dispatcher = Dispatcher([])
    pipeline = Pipeline(
        Engine(load_rules(default_rules_path())),
        tickets,
        DeviceDirectory(db),
        db,
        dispatcher,
        db,
        record=points.extend,
        set_aside=dead.extend,
    )
    fleet = [(f"s{i % sites:02d}", TYPES[i % len(TYPES)], f"d{i:05d}") for i in range(devices)]
    payload = json.dumps({"ts": START_MS, "state": "online"}).encode()
    batch = [
        decode(f"facility/v1/{site}/{kind}/{dev}/status", payload, START_MS) for site, kind, dev in fleet
    ]
    for i in range(0, len(batch), BATCH):
        pipeline.handle(batch[i : i + BATCH], arrival_ms=START_MS)
    busy = 0.0
    longest = 0.0
    opened_at: dict[str, datetime] = {}
    for second in range(1, 601):
        sim[0] = START_MS + second * 1000
        t0 = time.perf_counter()
        pipeline.tick(sim[0])
        took = time.perf_counter() - t0
        busy, longest = busy + took, max(longest, took)
    dispatcher.stop()
    found = tickets.list(TicketFilter(limit=100_000))
    per_site = Counter(t.site for t in found)
    for t in found:
        if t.rule == "outage":
            opened_at[t.site] = t.opened_at
    stopped = from_ms(START_MS)
    delays = [(at - stopped).total_seconds() for at in opened_at.values()]
    children = sum(
        len(tickets.alarms(True, limit=100_000, ticket_id=t.id)) for t in found if t.rule == "outage"
    )
    print(f"{devices:,} devices on {sites} sites, records {url.split(':', 1)[0]}; feed stopped at t = 0")
    print(
        f"tickets opened per site in the 10 minutes after: max {max(per_site.values())}, "
        f"min {min(per_site.values())} (target ≤ 3)"
    )
    print(
        f"outage incidents: {len(opened_at)}, with {children:,} offline alarms as children; "
        f"other tickets: {len(found) - len(opened_at)}"
    )
    print(
        f"incident opened (simulated) after the feed stopped: median {statistics.median(delays):.0f} s, "
        f"max {max(delays):.0f} s (detection: 3 times the shortest reporting interval of the site's devices)"
    )
    print(f"wall time of the 600 ticks (recording every offline alarm): {busy:.1f} s")
    print(f"longest tick (what a fire alarm arriving then waits for, at most): {longest:.2f} s")
    db.close()


def main() -> None:
    """Parse the arguments and run."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--sites", type=int, default=10)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'records.db'}"
        run(args.devices, args.sites, url)


if __name__ == "__main__":
    main()
