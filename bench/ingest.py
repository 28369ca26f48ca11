"""Ingest benchmark: mosquitto_pub → mosquitto → `facility collector` → influxd (v1 API), on this machine.

For each offered rate it publishes for a fixed time at QoS 1 (one `mosquitto_pub` per device, fed
in 20 ms chunks) and prints readings stored per
second, loss, publish→stored latency (p50/p99) and the collector's CPU seconds; then it measures
capacity flat out: the collector is paused (SIGSTOP) while a backlog queues in the broker, and
the drain is timed after SIGCONT. Peak RSS is the collector's over the whole run.

    python -m bench.ingest [--seconds 10] [--rates 1000 5000 10000] [--backlog 200000]

Latency is measured on a count curve: a sampler polls the stored count every 100 ms, and the
collector stores in arrival order, so the last reading of a chunk is stored when the count first
reaches the chunk's end. The figures carry that resolution (about 0.1 to 0.2 s). Readings stored
per second is all readings over the time from the first publish to the last one stored.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from tests.servers import CollectorProcess, Influxd, Mosquitto, find_binary

DEVICES = 20
CHUNKS_PER_S = 50


def _payload(seq: int, ts: int) -> bytes:
    return json.dumps(
        {
            "ts": ts,
            "seq": seq,
            "metrics": {
                "floor": seq % 30,
                "moving": seq % 3 != 0,
                "speed_mps": 1.75,
                "door": "closed",
                "in_door_zone": seq % 3 == 0,
                "occupied": True,
            },
        },
        separators=(",", ":"),
    ).encode()


def publish(port: int, site: str, total: int, rate: float | None) -> list[tuple[int, float]]:
    """Publish `total` readings at `rate` per second (None: flat out); returns (count, time) marks.

    A Python publisher tops out near the rates measured here, so the load comes from one
    `mosquitto_pub -l` process per device (QoS 1, a message per line), fed in 20 ms chunks.
    """
    procs = [
        subprocess.Popen(
            [
                "mosquitto_pub",
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-q",
                "1",
                "-l",
                "-i",
                f"bench-{site}-{d}",
                "-t",
                f"facility/v1/{site}/elevator/e-{d}/telemetry",
            ],
            stdin=subprocess.PIPE,
        )
        for d in range(DEVICES)
    ]
    marks: list[tuple[int, float]] = []
    chunk = max(DEVICES, int((rate or 50_000) / CHUNKS_PER_S))
    last_ts = [0] * DEVICES
    start = time.time()
    i = 0
    while i < total:
        if rate:
            delay = start + i / rate - time.time()
            if delay > 0:
                time.sleep(delay)
        now = time.time()
        now_ms = int(now * 1000)
        lines: list[list[bytes]] = [[] for _ in range(DEVICES)]
        for _ in range(min(chunk, total - i)):
            # Device time strictly increases per device: a point with the same series and
            # time overwrites the last one, as a redelivery should.
            device = i % DEVICES
            ts = last_ts[device] = max(now_ms, last_ts[device] + 1)
            lines[device].append(_payload(i // DEVICES, ts) + b"\n")
            i += 1
        for proc, batch in zip(procs, lines, strict=True):
            assert proc.stdin is not None
            proc.stdin.write(b"".join(batch))
            proc.stdin.flush()
        marks.append((i, now))
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.close()
    for proc in procs:
        proc.wait(300)
    return marks


class Sampler(threading.Thread):
    """Polls the stored count of one site every 100 ms, keeping (time, count)."""

    def __init__(self, influxd: Influxd, site: str) -> None:
        super().__init__(daemon=True)
        self.influxd, self.site = influxd, site
        self.samples: list[tuple[float, int]] = []
        self.stop = threading.Event()

    def count(self) -> int:
        """Readings of the site stored now."""
        series = self.influxd.query(
            f'SELECT count("seq") FROM "elevator" WHERE "site" = \'{self.site}\'', "facility"
        )
        return int(series[0]["values"][0][1]) if series else 0

    def run(self) -> None:
        while not self.stop.is_set():
            self.samples.append((time.time(), self.count()))
            time.sleep(0.1)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident set size (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def latencies(marks: list[tuple[int, float]], samples: list[tuple[float, int]]) -> list[float]:
    """Publish→stored seconds for the last reading of each publish chunk."""
    out = []
    j = 0
    for count, published in marks:
        while j < len(samples) and samples[j][1] < count:
            j += 1
        if j == len(samples):
            break
        out.append(samples[j][0] - published)
    return out


def wait_stored(sampler: Sampler, total: int, timeout_s: float) -> float:
    """Wait until `total` readings are stored or `timeout_s` passes without progress; returns when."""
    last, last_change = -1, time.time()
    while True:
        if sampler.samples:
            _, count = sampler.samples[-1]
            if count >= total:
                return next(ts for ts, c in sampler.samples if c >= total)
            if count != last:
                last, last_change = count, time.time()
        if time.time() - last_change > timeout_s:
            return time.time()
        time.sleep(0.05)


def run_phase(
    mosquitto: Mosquitto, influxd: Influxd, pid: int, site: str, total: int, rate: float
) -> dict[str, float]:
    """One offered rate: publish, wait for the store, return the figures."""
    sampler = Sampler(influxd, site)
    sampler.start()
    cpu0 = cpu_seconds(pid)
    t0 = time.time()
    marks = publish(mosquitto.port, site, total, rate)
    published_s = marks[-1][1] - t0
    done_at = wait_stored(sampler, total, timeout_s=20)
    sampler.stop.set()
    sampler.join()
    stored = sampler.samples[-1][1]
    lat = latencies(marks, sampler.samples)
    q = statistics.quantiles(lat, n=100) if len(lat) >= 2 else [float("nan")] * 99
    return {
        "offered_per_s": rate,
        "achieved_publish_per_s": total / published_s,
        "stored_per_s": stored / (done_at - t0),
        "published": total,
        "stored": stored,
        "lost": total - stored,
        "p50_s": statistics.median(lat) if lat else float("nan"),
        "p99_s": q[98],
        "collector_cpu_s": cpu_seconds(pid) - cpu0,
    }


def run_flat_out(
    mosquitto: Mosquitto, influxd: Influxd, collector: CollectorProcess, total: int
) -> dict[str, float]:
    """Capacity: pause the collector, queue a backlog in the broker, time the drain."""
    site = "bench-flat"
    os.kill(collector.pid, signal.SIGSTOP)
    t0 = time.time()
    publish(mosquitto.port, site, total, None)
    publish_rate = total / (time.time() - t0)
    sampler = Sampler(influxd, site)
    cpu0 = cpu_seconds(collector.pid)
    t1 = time.time()
    os.kill(collector.pid, signal.SIGCONT)
    sampler.start()
    done_at = wait_stored(sampler, total, timeout_s=30)
    sampler.stop.set()
    sampler.join()
    stored = sampler.samples[-1][1]
    return {
        "backlog": total,
        "publish_per_s": publish_rate,
        "drain_s": done_at - t1,
        "stored_per_s": stored / (done_at - t1),
        "stored": stored,
        "lost": total - stored,
        "collector_cpu_s": cpu_seconds(collector.pid) - cpu0,
        "cpu_us_per_reading": (cpu_seconds(collector.pid) - cpu0) / max(stored, 1) * 1e6,
    }


def main() -> None:
    """Start the servers and the collector, run every phase, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="publish time per rate")
    parser.add_argument("--rates", type=float, nargs="*", default=[1000, 5000, 10000])
    parser.add_argument("--backlog", type=int, default=200_000, help="readings for the flat-out drain")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    mosq_bin, influx_bin = find_binary("mosquitto"), find_binary("influxd")
    if not (mosq_bin and influx_bin and shutil.which("mosquitto_pub")):
        sys.exit("needs mosquitto, mosquitto_pub and influxd: make services")
    with tempfile.TemporaryDirectory(prefix="facility-bench-") as tmp:
        work = Path(tmp)
        mosquitto, influxd = Mosquitto(mosq_bin, work / "mosquitto"), Influxd(influx_bin, work / "influxd")
        mosquitto.start()
        influxd.start()
        influxd.create_database("facility")
        collector = CollectorProcess(mosquitto, influxd, work, "bench-collector")
        collector.start()
        try:
            results: dict[str, object] = {"phases": []}
            for rate in args.rates:
                total = int(rate * args.seconds)
                figures = run_phase(mosquitto, influxd, collector.pid, f"bench-{int(rate)}", total, rate)
                results["phases"].append(figures)  # type: ignore[attr-defined]
                print(
                    f"offered {rate:>7.0f}/s  published {figures['achieved_publish_per_s']:>7.0f}/s"
                    f"  stored {figures['stored_per_s']:>7.0f}/s  lost {figures['lost']:.0f}"
                    f"  p50 {figures['p50_s']:.2f} s  p99 {figures['p99_s']:.2f} s"
                    f"  collector CPU {figures['collector_cpu_s']:.1f} s",
                    flush=True,
                )
            flat = run_flat_out(mosquitto, influxd, collector, args.backlog)
            results["flat_out"] = flat
            print(
                f"flat out: backlog {flat['backlog']:.0f} drained in {flat['drain_s']:.1f} s"
                f" = {flat['stored_per_s']:.0f} readings/s, lost {flat['lost']:.0f},"
                f" collector CPU {flat['collector_cpu_s']:.1f} s"
                f" ({flat['cpu_us_per_reading']:.0f} µs/reading)",
                flush=True,
            )
            results["collector_peak_rss_mb"] = peak_rss_mb(collector.pid)
            print(f"collector peak RSS {results['collector_peak_rss_mb']:.0f} MB")
            if args.json:
                args.json.write_text(json.dumps(results, indent=2))
        finally:
            collector.stop()
            influxd.stop()
            mosquitto.stop()


if __name__ == "__main__":
    main()
