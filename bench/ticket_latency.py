"""Publish → ticket visible in the API: `facility serve` on real mosquitto, under background load.

Background: healthy elevator telemetry at `--rate` readings/s from `mosquitto_pub` processes.
Each trial publishes one fault that opens a ticket at once (a passenger alarm button on an
elevator of its own), then polls `GET /api/v1/tickets?device_id=…` every 10 ms until the ticket
shows; the figure is the time from the publish to the API answering with it.

    python -m bench.ticket_latency [--rate 1000] [--trials 100]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event as EventLike
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from tests.servers import Mosquitto, find_binary, free_port

TOKEN = "bench-token"
LOAD_DEVICES = 10
# Polling faster would load the server it measures; the figures carry up to this much extra.
POLL_S = 0.01


def background_load(port: int, rate: float, stop: EventLike, sent_total: Synchronized[int]) -> None:
    """Healthy elevator readings at `rate`/s until stopped; counts them in `sent_total`.

    Runs in a process of its own, so making the load does not slow the client that measures.
    """
    procs = [
        subprocess.Popen(
            [
                "mosquitto_pub",
                "-p",
                str(port),
                "-q",
                "1",
                "-l",
                "-t",
                f"facility/v1/load/elevator/e-{d}/telemetry",
            ],
            stdin=subprocess.PIPE,
        )
        for d in range(LOAD_DEVICES)
    ]
    sent, seq, start = 0, 0, time.time()
    while not stop.is_set():
        delay = start + sent / rate - time.time()
        if delay > 0:
            time.sleep(delay)
        ts = int(time.time() * 1000)
        chunk = max(LOAD_DEVICES, int(rate / 50))
        per_device = chunk // LOAD_DEVICES
        for d, proc in enumerate(procs):
            lines = []
            for k in range(per_device):
                doc = {
                    "ts": ts + k,
                    "seq": seq + k,
                    "metrics": {"floor": (seq + k) % 20, "moving": True, "door": "closed", "occupied": True},
                }
                lines.append(json.dumps(doc).encode() + b"\n")
            assert proc.stdin is not None
            proc.stdin.write(b"".join(lines))
            proc.stdin.flush()
            del d
        seq += per_device
        sent += per_device * LOAD_DEVICES
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(30)
    sent_total.value = sent


def main() -> None:
    """Start mosquitto and `facility serve`, run the load and the trials, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=1000.0, help="background readings per second")
    parser.add_argument("--trials", type=int, default=100)
    args = parser.parse_args()
    mosq_bin = find_binary("mosquitto")
    if not (mosq_bin and shutil.which("mosquitto_pub")):
        sys.exit("needs mosquitto and mosquitto_pub: make services")
    with tempfile.TemporaryDirectory(prefix="facility-bench-") as tmp:
        work = Path(tmp)
        mosquitto = Mosquitto(mosq_bin, work / "mosquitto")
        mosquitto.start()
        api_port = free_port()
        env = {
            **os.environ,
            "FACILITY_MQTT_URL": mosquitto.url,
            "FACILITY_DATA_DIR": str(work / "data"),
            "FACILITY_ADMIN_TOKEN": TOKEN,
            "FACILITY_LOG_LEVEL": "WARNING",
        }
        log = (work / "serve.log").open("wb")
        serve = subprocess.Popen(
            [sys.executable, "-m", "facility", "serve", "--port", str(api_port)],
            env=env,
            stdout=log,
            stderr=log,
        )
        http = httpx.Client(
            base_url=f"http://127.0.0.1:{api_port}", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        try:
            deadline = time.time() + 60
            while True:
                try:
                    if http.get("/health").json().get("mqtt_connected") == 1.0:
                        break
                except httpx.HTTPError:
                    pass
                if time.time() > deadline:
                    sys.exit("serve did not start: " + (work / "serve.log").read_text()[-2000:])
                time.sleep(0.1)
            stop = multiprocessing.Event()
            load_count = multiprocessing.Value("q", 0)
            load = multiprocessing.Process(
                target=background_load, args=(mosquitto.port, args.rate, stop, load_count)
            )
            load.start()
            time.sleep(2)  # let the load settle
            client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-faults")
            client.connect("127.0.0.1", mosquitto.port)
            client.loop_start()
            latencies = []
            for trial in range(args.trials):
                device = f"elev-{trial}"
                payload = json.dumps({"ts": int(time.time() * 1000), "seq": 0, "code": "ALARM_BUTTON"})
                t0 = time.perf_counter()
                client.publish(f"facility/v1/bench/elevator/{device}/event", payload, qos=1)
                while not http.get("/api/v1/tickets", params={"device_id": device}).json():
                    if time.perf_counter() - t0 > 10:
                        break
                    time.sleep(POLL_S)
                latencies.append(time.perf_counter() - t0)
                time.sleep(0.05)
            stop.set()
            load.join(30)
            client.disconnect()
            client.loop_stop()
            health = http.get("/health").json()
            q = statistics.quantiles(latencies, n=100)
            print(
                f"background {args.rate:.0f} readings/s ({load_count.value} sent,"
                f" {health['messages_received_total']:.0f} received by the service);"
                f" {len(latencies)} faults: publish→ticket in the API"
                f" p50 {statistics.median(latencies) * 1000:.0f} ms, p90 {q[89] * 1000:.0f} ms,"
                f" p99 {q[98] * 1000:.0f} ms,"
                f" max {max(latencies) * 1000:.0f} ms"
            )
        finally:
            http.close()
            serve.terminate()
            serve.wait(30)
            mosquitto.stop()


if __name__ == "__main__":
    main()
