"""Rules engine benchmark: `Engine.process` over a simulated mixed fleet, in process, no I/O.

Builds the simulated stream of every device type (`simulators.devices.build_fleet`, faults
injected so that alarms are raised and cleared), decodes it beforehand, then times
`engine.process` alone with the default rules and prints µs per reading (the median of several
repeats, each on a fresh engine) and the alarms raised and cleared.

    python -m bench.rules [--sites 10] [--messages 200000] [--repeats 5] [--rate 21] [--fault-rate 0.2]
"""

from __future__ import annotations

import argparse
import gc
import itertools
import statistics
import time
from collections import Counter

from ground.contract import Kind, Message, decode
from ground.events import AlarmEvent
from rules.catalogue import default_catalogue
from rules.engine import Engine
from simulators.devices import build_fleet
from simulators.stream import messages

START_MS = 1_795_749_124_000


def build_stream(
    sites: int, seed: int, count: int, rate: float, fault_rate: float
) -> list[tuple[Message, int]]:
    """`count` decoded messages of a `sites`-site fleet, with their arrival time (= device time)."""
    fleet = build_fleet(sites, seed, fault_rate_per_h=fault_rate)
    out = []
    for o in itertools.islice(messages(fleet, seed, START_MS, rate), count):
        out.append((decode(o.topic, o.payload, o.t_ms), o.t_ms))
    return out


def run_once(stream: list[tuple[Message, int]]) -> tuple[float, Counter[tuple[str, str]], Engine]:
    """Seconds spent in `process` over the stream, the alarms by (kind, rule), and the engine."""
    engine = Engine(default_catalogue())
    process = engine.process
    alarms: list[AlarmEvent] = []
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        for m, arrival in stream:
            events = process(m, arrival)
            if events:
                alarms.extend(events)
        elapsed = time.perf_counter() - start
    finally:
        gc.enable()
    counts: Counter[tuple[str, str]] = Counter()
    for a in alarms:
        counts[(a.kind, a.rule)] += 1
    return elapsed, counts, engine


def time_tick(engine: Engine, now_ms: int, calls: int = 200) -> float:
    """µs per `tick` call on the engine's devices, at a time when nothing falls due."""
    start = time.perf_counter()
    for _ in range(calls):
        engine.tick(now_ms)
    return (time.perf_counter() - start) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sites", type=int, default=10)
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rate", type=float, default=21.0, help="device reports per second, whole fleet")
    parser.add_argument("--fault-rate", type=float, default=0.2, help="faults per device per hour")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    t0 = time.perf_counter()
    stream = build_stream(args.sites, args.seed, args.messages, args.rate, args.fault_rate)
    built_s = time.perf_counter() - t0
    kinds = Counter(m.kind.value for m, _ in stream)
    types = Counter(m.device_type for m, _ in stream)
    span_h = (stream[-1][0].ts - stream[0][0].ts) / 3_600_000
    metrics = sum(len(m.body) for m, _ in stream if m.kind is Kind.TELEMETRY)
    devices = len({(m.site, m.device_id) for m, _ in stream})
    print(
        f"stream: {len(stream):,} messages from {args.sites} sites ({devices} devices), "
        f"{span_h:.1f} h of device time, built in {built_s:.1f} s"
    )
    print("  by kind: " + ", ".join(f"{k} {n:,}" for k, n in kinds.most_common()))
    print("  by type: " + ", ".join(f"{t} {n:,}" for t, n in types.most_common()))
    print(f"  {metrics / max(kinds['telemetry'], 1):.1f} metrics per telemetry message")

    timings = []
    counts: Counter[tuple[str, str]] = Counter()
    for _ in range(args.repeats):
        elapsed, counts, engine = run_once(stream)
        timings.append(elapsed / len(stream) * 1e6)
    print(
        f"process: {statistics.median(timings):.2f} µs per reading (median of {args.repeats}; "
        f"min {min(timings):.2f}, max {max(timings):.2f})"
    )
    tick_us = time_tick(engine, stream[-1][1])
    print(f"tick: {tick_us:.0f} µs per call over {len(engine.snapshot()['devices'])} devices")
    raised = sum(n for (kind, _), n in counts.items() if kind == "raised")
    cleared = sum(n for (kind, _), n in counts.items() if kind == "cleared")
    print(f"alarms: {raised} raised, {cleared} cleared")
    for rule in sorted({r for _, r in counts}):
        print(f"  {rule:30} raised {counts[('raised', rule)]:5}  cleared {counts[('cleared', rule)]:5}")


if __name__ == "__main__":
    main()
