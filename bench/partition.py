"""Workers sharing sites: how fast `facility serve` workers drain a backlog; CPU and memory per reading.

Real mosquitto and PostgreSQL (started here on free ports), N `facility serve` processes with
FACILITY_SITES splitting 20 sites between them, each with its embedded SQLite store. The workers
are paused (SIGSTOP) while the whole load is published into the broker, then resumed; the drain
is timed until every reading is in the stores. Faulty tanks open tickets as in
tests/facility/test_partition.py, so the rules, tickets and timers do their usual work.

    .venv/bin/python -m bench.partition --workers 2 --readings 200000
"""

from __future__ import annotations

import argparse
import signal
import tempfile
import time
from pathlib import Path

from sqlalchemy import func, select, text

from ground.clock import now_ms
from records.db import Database
from records.models import Ticket
from tests.fleet import Fleet, Worker, publish
from tests.servers import Mosquitto, PostgreSQL, find_binary, find_postgres_bin

SITES = tuple(f"s{n:02d}" for n in range(1, 21))
TANKS_PER_SITE = 10


def main() -> None:
    """Run once and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, default=2, choices=(1, 2, 4))
    parser.add_argument("--readings", type=int, default=200_000)
    parser.add_argument("--tanks-per-site", type=int, default=TANKS_PER_SITE)
    args = parser.parse_args()
    mosquitto_bin, pg_bin = find_binary("mosquitto"), find_postgres_bin()
    if mosquitto_bin is None or pg_bin is None:
        raise SystemExit("needs mosquitto and postgresql installed")
    fleet = Fleet(SITES, args.tanks_per_site, args.readings // (len(SITES) * args.tanks_per_site))
    work = Path(tempfile.mkdtemp(prefix="bench-partition-"))
    broker = Mosquitto(mosquitto_bin, work / "mosquitto")
    broker.start()
    pg = PostgreSQL(pg_bin, work / "postgresql")
    pg.start()
    per = len(SITES) // args.workers
    workers = [
        Worker(f"worker-{n}", SITES[n * per : (n + 1) * per], broker, pg.url, work)
        for n in range(args.workers)
    ]
    try:
        for worker in workers:
            worker.start()
        for worker in workers:
            assert worker.proc is not None
            worker.proc.send_signal(signal.SIGSTOP)
        began = time.monotonic()
        sent = publish(broker, fleet.messages(now_ms()))
        published_s = time.monotonic() - began
        cpu_before = [w.cpu_s() for w in workers]
        resumed = time.monotonic()
        for worker in workers:
            assert worker.proc is not None
            worker.proc.send_signal(signal.SIGCONT)
        share = fleet.total // args.workers
        finished: dict[str, float] = {}
        peak_rss = dict.fromkeys((w.name for w in workers), 0.0)
        deadline = resumed + 600
        while len(finished) < len(workers) and time.monotonic() < deadline:
            for worker in workers:
                peak_rss[worker.name] = max(peak_rss[worker.name], worker.rss_mb())
                if worker.name not in finished and worker.stored() >= share:
                    finished[worker.name] = time.monotonic() - resumed
            time.sleep(0.05)
        cpu = [w.cpu_s() - before for w, before in zip(workers, cpu_before, strict=True)]
        db = Database(pg.url)
        with db.read() as s:
            tickets = s.scalar(
                select(func.count()).select_from(Ticket).where(Ticket.rule == "water_tank_low")
            )
            snapshots = (
                s.execute(
                    text(
                        "SELECT length(h.state::text) + coalesce(sum(length(p.devices::text)), 0)"
                        " FROM engine_state h LEFT JOIN engine_state_parts p ON p.state_id = h.id"
                        " GROUP BY h.id"
                    )
                )
                .scalars()
                .all()
            )
        db.close()
        drain_s = max(finished.values(), default=float("nan"))
        print(f"{sent:,} readings over {len(SITES)} sites published in {published_s:.1f} s")
        rate = sent / drain_s
        print(f"{args.workers} worker(s), {share:,} readings each; drained in {drain_s:.1f} s: {rate:,.0f}/s")
        for worker, used in zip(workers, cpu, strict=True):
            took = finished.get(worker.name, float("nan"))
            print(
                f"  {worker.name}: drained in {took:.1f} s ({share / took:,.0f}/s), CPU {used:.1f} s"
                f" = {used / share * 1e6:.0f} µs/reading, peak RSS {peak_rss[worker.name]:.0f} MB"
            )
        print(f"water_tank_low tickets: {tickets} (expected {len(fleet.faulty_tanks())})")
        devices = len(SITES) * args.tanks_per_site
        print(f"{devices:,} devices; engine snapshots: {', '.join(f'{n / 1024:.0f} kB' for n in snapshots)}")
    finally:
        for worker in workers:
            if worker.proc is not None and worker.proc.poll() is None:
                worker.proc.send_signal(signal.SIGCONT)
            worker.stop()
        pg.stop()
        pg.remove()
        broker.stop()


if __name__ == "__main__":
    main()
