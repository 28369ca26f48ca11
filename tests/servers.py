"""Real servers (mosquitto, influxd 1.x, victoria-metrics) as subprocesses on free ports in temporary folders.

Used by the tests' fixtures and by the benchmarks. Each server can be stopped and started
again on the same port and data folder, to test outages. Every file a server is handed is
copied into its own folder first: a server that drops to a user of its own (mosquitto started
as root) cannot read a checkout inside a private home folder.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

BINARIES = {
    "mosquitto": ["mosquitto", "/usr/sbin/mosquitto"],
    "influxd": ["influxd", "/usr/bin/influxd"],
    "victoria-metrics": ["victoria-metrics", "/usr/bin/victoria-metrics"],
}

# Mosquitto's defaults drop QoS 1 messages to a subscriber that falls behind (a queue of 1000)
# and throttle it (20 in flight); a collector catching up on a backlog must get everything.
MOSQUITTO_CONF = """\
listener {port} 127.0.0.1
allow_anonymous true
persistence false
max_queued_messages 0
max_inflight_messages 1000
log_dest stderr
log_type error
log_type warning
"""

# The same with TLS: the broker's certificate and key, and the CA, copied into the server's folder.
MOSQUITTO_TLS_CONF = """\
listener {port} 127.0.0.1
cafile {dir}/certs/ca.crt
certfile {dir}/certs/broker.crt
keyfile {dir}/certs/broker.key
allow_anonymous true
persistence false
max_queued_messages 0
max_inflight_messages 1000
log_dest stderr
log_type error
log_type warning
log_type notice
"""

ROOT = Path(__file__).resolve().parents[1]

INFLUXD_CONF = """\
reporting-disabled = true
bind-address = "127.0.0.1:{rpc_port}"
[meta]
  dir = "{dir}/meta"
[data]
  dir = "{dir}/data"
  wal-dir = "{dir}/wal"
  query-log-enabled = false
[coordinator]
  write-timeout = "10s"
[http]
  bind-address = "127.0.0.1:{port}"
  log-enabled = false
[monitor]
  store-enabled = false
"""


def find_binary(name: str) -> str | None:
    """The path of a server binary, or None when it is not installed."""
    for candidate in BINARIES[name]:
        found = shutil.which(candidate)
        if found:
            return found
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(check: object, what: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if check():  # type: ignore[operator]
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{what} did not become ready in {timeout_s} s")


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code


class Server:
    """A server process with a port and a data folder that outlive restarts."""

    name = "server"

    def __init__(self, binary: str, workdir: Path) -> None:
        self.binary = binary
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = self.dir / f"{self.name}.log"

    def command(self) -> list[str]:
        """The command line that starts the server."""
        raise NotImplementedError

    def ready(self) -> bool:
        """True once it answers."""
        return _port_open(self.port)

    def start(self) -> None:
        """Start (or restart) and wait until it answers."""
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(self.command(), stdout=log, stderr=log, cwd=self.dir)
        try:
            _wait_for(self.ready, self.name)
        except TimeoutError:
            self.stop()
            raise TimeoutError(f"{self.name} did not start: {self.log.read_text()[-2000:]}") from None

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop the process and wait for it."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


class Mosquitto(Server):
    """mosquitto with the project's queue and in-flight settings."""

    name = "mosquitto"

    def command(self) -> list[str]:
        conf = self.dir / "mosquitto.conf"
        conf.write_text(MOSQUITTO_CONF.format(port=self.port))
        return [self.binary, "-c", str(conf)]

    @property
    def url(self) -> str:
        """The broker URL for FACILITY_MQTT_URL."""
        return f"mqtt://127.0.0.1:{self.port}"


class TlsMosquitto(Mosquitto):
    """mosquitto with a TLS listener only, its certificates copied from `certs` (as make-ca.sh names them)."""

    name = "mosquitto-tls"

    def __init__(self, binary: str, workdir: Path, certs: Path) -> None:
        super().__init__(binary, workdir)
        copy_for_server(certs, self.dir / "certs", ["ca.crt", "broker.crt", "broker.key"], "mosquitto")

    def command(self) -> list[str]:
        conf = self.dir / "mosquitto.conf"
        conf.write_text(MOSQUITTO_TLS_CONF.format(port=self.port, dir=self.dir))
        return [self.binary, "-c", str(conf)]

    @property
    def url(self) -> str:
        """The broker URL for FACILITY_MQTT_URL."""
        return f"mqtts://127.0.0.1:{self.port}"


def server_user(name: str) -> str | None:
    """The user a server started as root drops to, when this process is root and the user exists."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(name)
    except KeyError:
        return None
    return name


def server_dir(prefix: str, user: str = "mosquitto") -> Path:
    """A new temporary folder that the server's own user can enter (pytest's are private to root)."""
    path = Path(tempfile.mkdtemp(prefix=f"facility-{prefix}-"))
    owner = server_user(user)
    if owner:
        shutil.chown(path, owner)
    return path


def copy_for_server(source: Path, target: Path, names: list[str], user: str = "mosquitto") -> None:
    """Copy files into a server's folder, readable by the server's user only."""
    target.mkdir(parents=True, exist_ok=True)
    owner = server_user(user)
    for name in names:
        copied = target / name
        shutil.copyfile(source / name, copied)
        copied.chmod(0o600)
        if owner:
            shutil.chown(copied, owner)


def make_ca(directory: Path, *names: str) -> Path:
    """A CA and a broker certificate for 127.0.0.1, made by the shipped deploy/make-ca.sh, in `directory`."""
    subprocess.run(
        ["sh", str(ROOT / "deploy" / "make-ca.sh"), "-d", str(directory), *names],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return directory


class Influxd(Server):
    """InfluxDB 1.x, spoken to through its v1 API."""

    name = "influxd"

    def __init__(self, binary: str, workdir: Path) -> None:
        super().__init__(binary, workdir)
        self.rpc_port = free_port()

    def command(self) -> list[str]:
        conf = self.dir / "influxdb.conf"
        conf.write_text(INFLUXD_CONF.format(port=self.port, rpc_port=self.rpc_port, dir=self.dir))
        return [self.binary, "-config", str(conf)]

    def ready(self) -> bool:
        return _http_status(f"{self.url}/ping") == 204

    @property
    def url(self) -> str:
        """The HTTP API."""
        return f"http://127.0.0.1:{self.port}"

    def query(self, q: str, database: str | None = None) -> list[dict[str, Any]]:
        """Run InfluxQL; the first result's series."""
        params = {"q": q, "epoch": "ms"}
        if database:
            params["db"] = database
        data = urllib.parse.urlencode(params).encode()
        with urllib.request.urlopen(f"{self.url}/query", data=data, timeout=30) as resp:
            result = json.loads(resp.read())["results"][0]
        if "error" in result:
            raise RuntimeError(result["error"])
        return list(result.get("series", []))

    def create_database(self, name: str) -> None:
        """CREATE DATABASE (idempotent)."""
        self.query(f'CREATE DATABASE "{name}"')


class VictoriaMetrics(Server):
    """victoria-metrics: an independent server that accepts the InfluxDB v2 write API."""

    name = "victoria-metrics"

    def command(self) -> list[str]:
        return [
            self.binary,
            f"-httpListenAddr=127.0.0.1:{self.port}",
            f"-storageDataPath={self.dir / 'data'}",
            "-retentionPeriod=100y",
            # A point written twice (a redelivery) is one sample, as in InfluxDB.
            "-dedup.minScrapeInterval=1ms",
            "-loggerLevel=ERROR",
        ]

    def ready(self) -> bool:
        return _http_status(f"{self.url}/health") == 200

    @property
    def url(self) -> str:
        """The HTTP API."""
        return f"http://127.0.0.1:{self.port}"

    def export(self, match: str) -> list[dict[str, Any]]:
        """Every series matching `match`, with values and timestamps (ms), after a flush."""
        urllib.request.urlopen(f"{self.url}/internal/force_flush", timeout=30).read()
        query = urllib.parse.urlencode({"match[]": match, "start": "0"})
        with urllib.request.urlopen(f"{self.url}/api/v1/export?{query}", timeout=30) as resp:
            return [json.loads(line) for line in resp.read().splitlines() if line.strip()]


def require_services() -> bool:
    """True when a missing server must fail the tests rather than skip them (CI)."""
    return os.environ.get("FACILITY_REQUIRE_SERVICES") == "1"


class CollectorProcess:
    """`facility collector` as a process of its own, on a mosquitto and influxd's v1 API."""

    def __init__(
        self, mosquitto: Mosquitto, influxd: Influxd, workdir: Path, client_id: str, **env: str
    ) -> None:
        self.env = {
            **os.environ,
            "FACILITY_MQTT_URL": mosquitto.url,
            "FACILITY_INFLUX_URL": influxd.url,
            "FACILITY_INFLUX_API": "v1",
            "FACILITY_INFLUX_DATABASE": "facility",
            "FACILITY_DATA_DIR": str(workdir / "data"),
            "FACILITY_MQTT_CLIENT_ID": client_id,
            **env,
        }
        self.dir = workdir
        self.log = workdir / "collector.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._starts = 0

    def start(self, timeout_s: float = 30.0) -> None:
        """Start it and wait until it has subscribed."""
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "facility", "collector"],
                env=self.env,
                stdout=log,
                stderr=log,
                cwd=self.dir,
            )
        self._starts += 1
        _wait_for(lambda: self.log.read_text().count("subscribed to") >= self._starts, "collector", timeout_s)

    @property
    def pid(self) -> int:
        """The process id."""
        assert self.proc is not None
        return self.proc.pid

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Signal it and wait for it to exit."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(30)


def find_postgres_bin() -> Path | None:
    """The folder of PostgreSQL's server programs (initdb, postgres), or None."""
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "initdb").exists():
            return candidate
    found = shutil.which("initdb")
    return Path(found).parent if found else None


class PostgreSQL(Server):
    """A PostgreSQL server of its own; as root, it runs as the `postgres` user (it refuses root)."""

    name = "postgresql"

    def __init__(self, bindir: Path, workdir: Path) -> None:
        # pytest's temporary folders are private to root; postgres needs a folder it can enter.
        own = Path(tempfile.mkdtemp(prefix="facility-pg-"))
        super().__init__(str(bindir / "postgres"), own)
        self.bindir = bindir
        self.data = own / "data"
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            shutil.chown(own, "postgres")
        self._run(
            [str(bindir / "initdb"), "-D", str(self.data), "-U", "facility", "--auth=trust", "-E", "UTF8"]
        )

    def _run(self, cmd: list[str]) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if self._as_postgres else []
        subprocess.run(prefix + cmd, check=True, capture_output=True, cwd=self.dir)

    def command(self) -> list[str]:
        prefix = ["runuser", "-u", "postgres", "--"] if self._as_postgres else []
        return [
            *prefix,
            self.binary,
            "-D",
            str(self.data),
            "-p",
            str(self.port),
            "-h",
            "127.0.0.1",
            "-k",
            str(self.dir),
            "-c",
            "fsync=off",
            "-c",
            "max_connections=50",
        ]

    def ready(self) -> bool:
        if not _port_open(self.port):
            return False
        probe = subprocess.run(
            [str(self.bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)], capture_output=True
        )
        return probe.returncode == 0

    def start(self) -> None:
        super().start()
        subprocess.run(
            [
                str(self.bindir / "createdb"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "facility",
                "records",
            ],
            check=False,
            capture_output=True,
        )

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of the `records` database."""
        return f"postgresql://facility@127.0.0.1:{self.port}/records"

    def stop(self, sig: int = signal.SIGTERM) -> None:
        super().stop(sig)

    def remove(self) -> None:
        """Delete its folder."""
        shutil.rmtree(self.dir, ignore_errors=True)
