"""Workers that share sites: `facility serve` processes, a fleet of water tanks, what they stored.

Used by tests/facility/test_partition.py and bench/partition.py.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from tests.servers import Mosquitto, free_port

LOW_LEVEL = 10.0  # below water_tank_low's 20 %
NORMAL_LEVEL = 60.0
READING_STEP_MS = 250  # device time between a tank's readings: 1,000 readings span 250 s


@dataclass(frozen=True)
class Fleet:
    """Water tanks over sites; the first `faulty` tanks of each site read low throughout."""

    sites: tuple[str, ...]
    tanks_per_site: int
    readings_per_tank: int
    faulty: int = 2

    @property
    def total(self) -> int:
        """Readings the fleet sends."""
        return len(self.sites) * self.tanks_per_site * self.readings_per_tank

    def tanks(self, site: str) -> list[str]:
        """The tanks of a site."""
        return [f"tank-{n:02d}" for n in range(self.tanks_per_site)]

    def faulty_tanks(self) -> set[tuple[str, str]]:
        """(site, tank) of every tank that must get a water_tank_low ticket."""
        return {(site, tank) for site in self.sites for tank in self.tanks(site)[: self.faulty]}

    def messages(self, end_ms: int) -> Iterator[tuple[str, bytes]]:
        """Every reading, round by round over all tanks (so every site advances together), seq from 0.

        Device time ends at `end_ms`, so the last readings are current and the tanks are not offline.
        """
        start = end_ms - (self.readings_per_tank - 1) * READING_STEP_MS
        faulty = self.faulty_tanks()
        for seq in range(self.readings_per_tank):
            ts = start + seq * READING_STEP_MS
            for site in self.sites:
                for tank in self.tanks(site):
                    level = LOW_LEVEL if (site, tank) in faulty else NORMAL_LEVEL + (seq % 7)
                    payload = {"ts": ts, "seq": seq, "metrics": {"level_pct": level}}
                    yield f"facility/v1/{site}/water_tank/{tank}/telemetry", json.dumps(payload).encode()


def publish(broker: Mosquitto, messages: Iterator[tuple[str, bytes]], batch: int = 5000) -> int:
    """Publish at QoS 1, waiting for the broker's acknowledgements after each batch; returns how many."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"fleet-{os.getpid()}-{time.monotonic_ns()}")
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    sent = 0
    try:
        infos: list[mqtt.MQTTMessageInfo] = []
        for topic, payload in messages:
            infos.append(client.publish(topic, payload, qos=1))
            sent += 1
            if len(infos) >= batch:
                for info in infos:
                    info.wait_for_publish(60)
                infos = []
        for info in infos:
            info.wait_for_publish(60)
    finally:
        client.disconnect()
        client.loop_stop()
    return sent


class Worker:
    """`facility serve` as a process of its own, serving `sites`, with its data folder and client id."""

    def __init__(
        self, name: str, sites: Sequence[str], broker: Mosquitto, database_url: str, workdir: Path, **env: str
    ) -> None:
        self.name = name
        self.dir = workdir / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.env = {
            **os.environ,
            "FACILITY_MQTT_URL": broker.url,
            "FACILITY_MQTT_CLIENT_ID": f"facility-{name}",
            "FACILITY_SITES": ",".join(sites),
            "FACILITY_DATABASE_URL": database_url,
            "FACILITY_DATA_DIR": str(self.dir / "data"),
            "FACILITY_INFLUX_URL": "",  # the embedded SQLite store, one per worker
            "FACILITY_BUFFER_SYNC": "NORMAL",
            "FACILITY_FLUSH_INTERVAL_S": "0.2",
            **env,
        }
        self.log = self.dir / "serve.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._starts = 0

    def start(self, timeout_s: float = 60.0) -> None:
        """Start it and wait until its collector has subscribed."""
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "facility", "serve", "--port", str(self.port)],
                env=self.env,
                stdout=log,
                stderr=log,
                cwd=self.dir,
            )
        self._starts += 1
        deadline = time.monotonic() + timeout_s
        while self.log.read_text(errors="replace").count("subscribed to") < self._starts:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker {self.name} did not start: {self.log.read_text()[-3000:]}")
            time.sleep(0.1)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Signal it and wait for it to exit."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    @property
    def store_path(self) -> Path:
        """Its embedded time-series store."""
        return self.dir / "data" / "timeseries.db"

    def stored(self) -> int:
        """Readings in its store so far."""
        return sum(count for count in self.stored_by_site().values())

    def stored_by_site(self) -> dict[str, int]:
        """Readings in its store, by site."""
        if not self.store_path.exists():
            return {}
        with _reading(self.store_path) as db:
            rows = db.execute(
                "SELECT site, count(*) FROM points WHERE measurement = 'water_tank' GROUP BY site"
            )
            return dict(rows.fetchall())

    def sites_of(self, measurement: str) -> set[str]:
        """The sites of the points of a measurement in its store."""
        with _reading(self.store_path) as db:
            rows = db.execute("SELECT DISTINCT site FROM points WHERE measurement = ?", (measurement,))
            return {site for (site,) in rows}

    def seqs(self) -> dict[tuple[str, str], list[int]]:
        """Each tank's stored seqs, in order, one entry per stored point."""
        found: dict[tuple[str, str], list[int]] = {}
        with _reading(self.store_path) as db:
            rows = db.execute(
                "SELECT site, device_id, json_extract(fields, '$.seq') FROM points"
                " WHERE measurement = 'water_tank' ORDER BY site, device_id, time"
            )
            for site, device, seq in rows:
                found.setdefault((site, device), []).append(seq)
        return found

    def cpu_s(self) -> float:
        """CPU seconds the running process has used (user and system)."""
        assert self.proc is not None
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mb(self) -> float:
        """Resident memory of the running process, MB."""
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0


class _reading:
    """A short read-only connection to a worker's store (WAL: it reads while the worker writes)."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)

    def __enter__(self) -> sqlite3.Connection:
        return self.db

    def __exit__(self, *_: object) -> None:
        self.db.close()
