"""Memory of `facility serve`: resident memory idle, per device known, and at the peak of a drain.

Real mosquitto (started here on a free port) and one `facility serve` with default settings
(SQLite records, the embedded SQLite store, a temporary data folder). Nothing is registered. The
fleet grows phase by phase (`--devices`, cumulative): in each phase every device of the fleet so
far reports `--reports` times, round by round, at QoS 1 and at most `--rate` messages per second,
so that the collector, the rules engine and the device directory all know it. Once every reading
is stored and every device has its row, the service's VmRSS (median of a few samples) and VmHWM
are read from /proc. Every other device is an elevator (8 metrics, reporting every 10 s by the
contract), the rest water tanks (one metric, every 60 s); 1,000 devices per site. A round over
100,000 devices takes longer than an elevator may stay silent (three times 10 s), so the service runs
the default rules with the offline factor raised to 30: the same rules and state, no outage.

With `--drain`, a second `facility serve` of its own is paused (SIGSTOP) while `--drain`
readings from `--drain-devices` elevators queue in the broker, then resumed: its VmHWM once the
drain is stored is the peak of a catch-up.

    .venv/bin/python -m bench.memory --devices 0 1000 10000 100000 --drain 200000
"""

from __future__ import annotations

import argparse
import json
import signal
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from records.db import database_url, make_engine, migrate
from rules.catalogue import default_rules_path
from tests.fleet import Worker, publish
from tests.servers import Mosquitto, find_binary

PER_SITE = 1_000
ELEVATOR = {
    "floor": 3,
    "moving": False,
    "speed_mps": 0.0,
    "door": "closed",
    "in_door_zone": True,
    "occupied": False,
    "service_mode": "normal",
    "run_count": 100,
}


def device(n: int) -> tuple[str, str, str]:
    """(site, device type, device id) of the fleet's n-th device."""
    site = f"s{n // PER_SITE:03d}"
    if n % 2:
        return site, "water_tank", f"tank-{n:06d}"
    return site, "elevator", f"lift-{n:06d}"


def payload(device_type: str, seq: int, ts: int) -> bytes:
    """One telemetry message of the device type."""
    metrics = ELEVATOR if device_type == "elevator" else {"level_pct": 60.0 + seq % 7}
    return json.dumps({"ts": ts, "seq": seq, "metrics": metrics}, separators=(",", ":")).encode()


class Fleet:
    """Devices 0..n-1; each keeps its next seq across phases."""

    def __init__(self) -> None:
        self.seqs: list[int] = []

    def rounds(self, devices: int, reports: int, rate: float) -> Iterator[tuple[str, bytes]]:
        """`reports` rounds over the first `devices` devices, paced to `rate` messages per second."""
        while len(self.seqs) < devices:
            self.seqs.append(0)
        began, sent = time.monotonic(), 0
        for _ in range(reports):
            for n in range(devices):
                ahead = began + sent / rate - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)
                site, device_type, device_id = device(n)
                seq = self.seqs[n]
                self.seqs[n] += 1
                sent += 1
                topic = f"facility/v1/{site}/{device_type}/{device_id}/telemetry"
                yield topic, payload(device_type, seq, int(time.time() * 1000))


def status_kb(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process, kB."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            found[name] = int(value.split()[0])
    return found


def settled_rss_kb(pid: int, samples: int = 5, every_s: float = 0.5) -> int:
    """The median of a few VmRSS samples (a flush or a tick may be under way at any one)."""
    taken = []
    for _ in range(samples):
        taken.append(status_kb(pid)["VmRSS"])
        time.sleep(every_s)
    return int(statistics.median(taken))


def count(path: Path, sql: str) -> int:
    """One count from an SQLite file of the service, read-only (0 while it does not exist)."""
    if not path.exists():
        return 0
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        return int(db.execute(sql).fetchone()[0])
    except sqlite3.OperationalError:
        return 0  # a table not made yet
    finally:
        db.close()


READINGS = "SELECT count(*) FROM points"
DEVICES_SEEN = "SELECT count(*) FROM devices WHERE last_seen IS NOT NULL"


def at_least(path: Path, sql: str, wanted: int) -> Callable[[], bool]:
    """A check that the count is `wanted` or more."""
    return lambda: count(path, sql) >= wanted


def wait_for(what: str, check: Callable[[], bool], timeout_s: float) -> float:
    """Poll `check()` until true; returns the seconds waited."""
    began = time.monotonic()
    while not check():
        if time.monotonic() - began > timeout_s:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.2)
    return time.monotonic() - began


def serve(broker: Mosquitto, work: Path, name: str) -> Worker:
    """A started `facility serve` with the project's default settings and a data folder of its own.

    Its records are migrated beforehand, as they are at every start but the first.
    """
    rules = work / "rules.yaml"
    default = default_rules_path().read_text()
    assert "\n  factor: 3\n" in default
    rules.write_text(default.replace("\n  factor: 3\n", "\n  factor: 30\n"))
    worker = Worker(
        name,
        (),
        broker,
        "",
        work,
        FACILITY_BUFFER_SYNC="FULL",
        FACILITY_FLUSH_INTERVAL_S="0.5",
        FACILITY_RULES_FILE=str(rules),
    )
    data = worker.dir / "data"
    engine = make_engine(database_url(None, data))
    migrate(engine)
    engine.dispose()
    worker.start()
    return worker


def grow(broker: Mosquitto, work: Path, phases: list[int], reports: int, rate: float) -> None:
    """The fleet grows through `phases`; resident memory after each."""
    worker = serve(broker, work, "fleet")
    assert worker.proc is not None
    pid = worker.proc.pid
    data = worker.dir / "data"
    fleet, stored = Fleet(), 0
    try:
        time.sleep(3)  # the API up and the start-up heap settled
        idle = None
        print("| devices | readings | VmRSS | VmHWM | per device | offline alarms |")
        print("|---:|---:|---:|---:|---:|---:|")
        for devices in phases:
            if devices:
                stored += publish(broker, fleet.rounds(devices, reports, rate))
                wait_for("the readings", at_least(worker.store_path, READINGS, stored), 300)
                wait_for("the device rows", at_least(data / "records.db", DEVICES_SEEN, devices), 300)
                time.sleep(2)
            rss = settled_rss_kb(pid)
            hwm = status_kb(pid)["VmHWM"]
            offline = count(data / "records.db", "SELECT count(*) FROM alarms WHERE rule = 'offline'")
            if idle is None and devices == 0:
                idle = rss
            per = f"{(rss - idle) * 1024 / devices:,.0f} B" if idle is not None and devices else "-"
            row = (
                f"{devices:,}",
                f"{stored:,}",
                f"{rss / 1024:.1f} MB",
                f"{hwm / 1024:.1f} MB",
                per,
                offline,
            )
            print(f"| {' | '.join(map(str, row))} |", flush=True)
    finally:
        worker.stop()


def drain(broker: Mosquitto, work: Path, readings: int, devices: int) -> None:
    """Peak memory of a service catching up on a backlog queued while it was paused."""
    worker = serve(broker, work, "drain")
    assert worker.proc is not None
    pid = worker.proc.pid
    try:
        time.sleep(3)
        before = status_kb(pid)
        worker.proc.send_signal(signal.SIGSTOP)

        def backlog() -> Iterator[tuple[str, bytes]]:
            for i in range(readings):
                n = i % devices
                yield (
                    f"facility/v1/drain/elevator/lift-{n:06d}/telemetry",
                    payload("elevator", i // devices, int(time.time() * 1000)),
                )

        sent = publish(broker, backlog())
        began = time.monotonic()
        worker.proc.send_signal(signal.SIGCONT)
        took = wait_for("the drain", at_least(worker.store_path, READINGS, sent), 600)
        time.sleep(2)
        after = status_kb(pid)
        print(
            f"drain: {sent:,} readings from {devices:,} devices stored in {took:.1f} s"
            f" ({sent / took:,.0f}/s, {time.monotonic() - began:.0f} s with the wait);"
            f" before VmRSS {before['VmRSS'] / 1024:.1f} MB, VmHWM {before['VmHWM'] / 1024:.1f} MB;"
            f" peak VmHWM {after['VmHWM'] / 1024:.1f} MB, VmRSS after {after['VmRSS'] / 1024:.1f} MB",
            flush=True,
        )
    finally:
        if worker.proc is not None and worker.proc.poll() is None:
            worker.proc.send_signal(signal.SIGCONT)
        worker.stop()


def main() -> None:
    """Run the phases, then the drain, and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, nargs="*", default=[0, 1000, 10_000, 100_000])
    parser.add_argument("--reports", type=int, default=2, help="readings per device in each phase")
    parser.add_argument("--rate", type=float, default=5000.0, help="messages per second at most")
    parser.add_argument("--drain", type=int, default=0, help="readings of the drain; 0: none")
    parser.add_argument("--drain-devices", type=int, default=1000)
    args = parser.parse_args()
    mosquitto_bin = find_binary("mosquitto")
    if mosquitto_bin is None:
        raise SystemExit("needs mosquitto installed")
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        work = Path(tmp)
        broker = Mosquitto(mosquitto_bin, work / "mosquitto")
        broker.start()
        try:
            if args.devices:
                grow(broker, work, sorted(args.devices), args.reports, args.rate)
            if args.drain:
                drain(broker, work, args.drain, args.drain_devices)
        finally:
            broker.stop()


if __name__ == "__main__":
    main()
