"""The stack's brokers as shipped in deploy/, run by the tests on free ports in folders of their own."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import _binary
from tests.servers import Mosquitto, copy_for_server, free_port, require_services, server_dir, server_user

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto"
GATEWAY = DEPLOY.parent / "gateway"
SERVICE = ("facility.service", "service-secret")
SITE_01 = ("site-01", "site-01-secret")
SITE_02 = ("site-02", "site-02-secret")
DEVICE = ("site-02/sump_pit/sump-7", "sump-7-secret")


def _answers(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


class StackMosquitto(Mosquitto):
    """mosquitto with deploy/mosquitto as shipped, copied into its folder; ports and folders rewritten."""

    name = "mosquitto"

    def __init__(self, binary: str, workdir: Path) -> None:
        super().__init__(binary, workdir)
        self.service_port = free_port()
        copy_for_server(DEPLOY, self.dir / "config", ["mosquitto.conf", "acl"])
        (self.dir / "data").mkdir(exist_ok=True)
        owner = server_user("mosquitto")
        if owner:
            shutil.chown(self.dir / "data", owner)

    def ready(self) -> bool:
        """True once both listeners answer: mosquitto opens them one after the other."""
        return all(_answers(port) for port in (self.port, self.service_port))

    def command(self) -> list[str]:
        conf = (self.dir / "config" / "mosquitto.conf").read_text()
        replacements = {
            r"^listener 8883$": f"listener {self.port} 127.0.0.1",
            r"^listener 8884$": f"listener {self.service_port} 127.0.0.1",
            r"^log_dest .*$": "log_dest stderr",
        }
        for pattern, line in replacements.items():
            conf, count = re.subn(pattern, line, conf, flags=re.MULTILINE)
            assert count == 1, f"mosquitto.conf has no single line matching {pattern}"
        for folder in ("auth", "config", "data"):
            conf = conf.replace(f" /mosquitto/{folder}/", f" {self.dir}/{folder}/")
        assert "/mosquitto/" not in conf, "mosquitto.conf names a path the test does not move"
        path = self.dir / "mosquitto.conf"
        path.write_text(conf)
        return [self.binary, "-c", str(path)]


def start_stack_broker(certs: Path) -> Iterator[StackMosquitto]:
    """The stack's broker config on free ports, with accounts made by make-passwords.sh."""
    binary = _binary("mosquitto")
    if shutil.which("mosquitto_passwd") is None:
        message = "mosquitto_passwd is not installed (apt-get install mosquitto)"
        if require_services():
            pytest.fail(message)
        pytest.skip(message)
    workdir = server_dir("stack-mosquitto")
    server = StackMosquitto(binary, workdir)
    env = {
        **os.environ,
        "MQTT_SERVICE_PASSWORD": SERVICE[1],
        "MQTT_SIMULATOR_SITE": SITE_01[0],
        "MQTT_SIMULATOR_PASSWORD": SITE_01[1],
        "MQTT_SITE_ACCOUNTS": f"{SITE_02[0]}:{SITE_02[1]} {DEVICE[0]}:{DEVICE[1]}",
    }
    subprocess.run(["sh", str(DEPLOY / "make-passwords.sh"), str(server.dir / "auth")], env=env, check=True)
    subprocess.run(["sh", str(DEPLOY / "copy-certs.sh"), str(certs), str(server.dir / "auth")], check=True)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


class GatewayMosquitto(Mosquitto):
    """A site's gateway broker with deploy/gateway as shipped, bridged to a StackMosquitto as `site`."""

    name = "gateway"

    def __init__(
        self, binary: str, workdir: Path, central: StackMosquitto, site: tuple[str, str], ca: Path
    ) -> None:
        super().__init__(binary, workdir)
        copy_for_server(GATEWAY, self.dir / "config", ["mosquitto.conf"])
        data = self.dir / "data"
        data.mkdir(exist_ok=True)
        owner = server_user("mosquitto")
        if owner:
            shutil.chown(data, owner)
        env = {
            **os.environ,
            "GATEWAY_SITE": site[0],
            "GATEWAY_PASSWORD": site[1],
            "GATEWAY_UPSTREAM": f"127.0.0.1:{central.port}",
            "GATEWAY_CA_FILE": str(ca),
        }
        subprocess.run(["sh", str(GATEWAY / "make-bridge.sh"), str(self.dir / "bridge")], env=env, check=True)

    def command(self) -> list[str]:
        conf = (self.dir / "config" / "mosquitto.conf").read_text()
        replacements = {
            r"^listener 1883$": f"listener {self.port} 127.0.0.1",
            r"^persistence_location .*$": f"persistence_location {self.dir}/data/",
            r"^include_dir .*$": f"include_dir {self.dir}/bridge",
            r"^log_dest .*$": "log_dest stderr",
        }
        for pattern, line in replacements.items():
            conf, count = re.subn(pattern, line, conf, flags=re.MULTILINE)
            assert count == 1, f"gateway mosquitto.conf has no single line matching {pattern}"
        assert "/mosquitto/" not in conf, "the gateway's mosquitto.conf names a path the test does not move"
        path = self.dir / "mosquitto.conf"
        path.write_text(conf)
        return [self.binary, "-c", str(path)]
