"""docker-compose.yml, checked by `docker-compose config` (Debian's docker-compose 1.29 needs no engine).

Nothing here starts a container: Docker cannot run on this machine. What the stack would run is
checked piece by piece elsewhere: the broker config in test_mosquitto.py, the dashboards' queries
in tests/grafana/test_queries.py.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from facility.grafana.influxql import DATASOURCE_UID
from facility.settings import MqttEndpoint, Settings
from tests.servers import require_services

pytestmark = pytest.mark.services

ROOT = Path(__file__).resolve().parents[2]
SECRETS = {
    "FACILITY_ADMIN_TOKEN": "admin-token-from-env",
    "MQTT_SERVICE_PASSWORD": "service-pass",
    "MQTT_SIMULATOR_PASSWORD": "site-pass",
    "INFLUXDB_ADMIN_TOKEN": "influx-token",
    "INFLUXDB_ADMIN_PASSWORD": "influx-pass",
    "GRAFANA_ADMIN_PASSWORD": "grafana-pass",
}


def _compose() -> str:
    found = shutil.which("docker-compose")
    if found is None:
        message = "docker-compose is not installed (apt-get install docker-compose)"
        if require_services():
            pytest.fail(message + "; FACILITY_REQUIRE_SERVICES=1 forbids skipping")
        pytest.skip(message)
    return found


def env_file(tmp_path: Path, **changes: str) -> Path:
    """A .env made from .env.example, with some values changed as a person would edit them."""
    lines = []
    for line in (ROOT / ".env.example").read_text().splitlines():
        name = line.split("=", 1)[0]
        lines.append(f"{name}={changes[name]}" if name in changes and "=" in line else line)
    path = tmp_path / ".env"
    path.write_text("\n".join(lines) + "\n")
    return path


def config(tmp_path: Path, **changes: str) -> subprocess.CompletedProcess[str]:
    """`docker-compose config` of the repository's compose file with that .env."""
    env = env_file(tmp_path, **changes)
    command = [_compose(), "-f", str(ROOT / "docker-compose.yml"), "--env-file", str(env), "config"]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


@pytest.fixture
def stack(tmp_path: Path) -> dict[str, Any]:
    """The resolved compose file with the secrets filled in."""
    result = config(tmp_path, **SECRETS)
    assert result.returncode == 0, result.stderr
    return dict(yaml.safe_load(result.stdout)["services"])


def test_the_example_env_is_refused_until_its_secrets_are_set(tmp_path: Path) -> None:
    result = config(tmp_path)
    assert result.returncode != 0
    assert re.search(r"set \w+ in \.env", result.stderr), result.stderr


def test_the_stack_has_its_five_services(stack: dict[str, Any]) -> None:
    assert set(stack) == {"mosquitto", "influxdb", "grafana", "facility", "simulators"}
    assert stack["facility"]["command"] == ["serve", "--host", "0.0.0.0", "--port", "8000"]
    assert stack["simulators"]["command"][0] == "simulate"
    assert stack["facility"]["build"]["context"] == str(ROOT)
    assert (ROOT / "Dockerfile").exists()


def test_the_service_gets_valid_settings_and_the_service_account(stack: dict[str, Any]) -> None:
    env = stack["facility"]["environment"]
    settings = Settings(_env_file=None, **{k.removeprefix("FACILITY_").lower(): v for k, v in env.items()})  # type: ignore[call-arg]
    assert settings.admin_token == "admin-token-from-env"
    assert (settings.influx_api, settings.influx_token) == ("v2", "influx-token")
    assert settings.influx_bucket == stack["influxdb"]["environment"]["DOCKER_INFLUXDB_INIT_BUCKET"]
    assert settings.influx_org == stack["influxdb"]["environment"]["DOCKER_INFLUXDB_INIT_ORG"]
    mqtt = settings.mqtt
    assert (mqtt.host, mqtt.username, mqtt.password) == ("mosquitto", "facility.service", "service-pass")
    acl = (ROOT / "deploy" / "mosquitto" / "acl").read_text()
    assert re.search(rf"^user {re.escape(mqtt.username or '')}$", acl, re.MULTILINE)


def test_the_services_settings_in_env_reach_it_with_the_same_defaults(tmp_path: Path) -> None:
    defaults = Settings(_env_file=None)  # type: ignore[call-arg]
    result = config(tmp_path, **SECRETS)
    assert result.returncode == 0, result.stderr
    env = yaml.safe_load(result.stdout)["services"]["facility"]["environment"]
    for key, value in env.items():
        name = key.removeprefix("FACILITY_").lower()
        if name in ("timezone", "buffer_sync") or name.endswith("_s"):
            assert str(value) == str(getattr(defaults, name)).removesuffix(".0"), key
    changed = config(tmp_path, **SECRETS, FACILITY_TIMEZONE="Asia/Shanghai", FACILITY_PATROL_GRACE_S="600")
    env = yaml.safe_load(changed.stdout)["services"]["facility"]["environment"]
    assert (env["FACILITY_TIMEZONE"], env["FACILITY_PATROL_GRACE_S"]) == ("Asia/Shanghai", "600")


def test_every_secret_must_be_set(tmp_path: Path) -> None:
    for secret in SECRETS:
        result = config(tmp_path, **{**SECRETS, secret: ""})
        assert result.returncode != 0 and f"set {secret} in .env" in result.stderr, secret


def test_the_simulators_log_in_as_their_site(stack: dict[str, Any]) -> None:
    sim = MqttEndpoint(stack["simulators"]["environment"]["FACILITY_MQTT_URL"])
    assert (sim.username, sim.password) == ("site-01", "site-pass")
    assert stack["simulators"]["command"][1:3] == ["--sites", "1"]  # the fleet of one site is site-01
    broker = stack["mosquitto"]["environment"]
    assert (broker["MQTT_SIMULATOR_SITE"], broker["MQTT_SIMULATOR_PASSWORD"]) == ("site-01", "site-pass")
    assert broker["MQTT_SERVICE_PASSWORD"] == "service-pass"


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path → host path of a service's bind mounts."""
    out = {}
    for volume in service["volumes"]:
        if isinstance(volume, dict):  # the long syntax (Compose v2)
            if volume["type"] == "bind":
                out[volume["target"]] = volume["source"]
        elif volume.startswith("/"):  # "host:container[:mode]", as docker-compose 1.29 prints it
            source, target = volume.split(":")[:2]
            out[target] = source
    return out


def test_grafana_is_provisioned_from_the_repository(stack: dict[str, Any]) -> None:
    grafana = stack["grafana"]
    mounts = _mounts(grafana)
    assert mounts["/etc/grafana/provisioning"] == str(ROOT / "grafana" / "provisioning")
    providers = yaml.safe_load((ROOT / "grafana/provisioning/dashboards/facility.yaml").read_text())
    path = providers["providers"][0]["options"]["path"]
    assert mounts[path] == str(ROOT / "grafana" / "dashboards")
    assert list((ROOT / "grafana" / "dashboards").glob("facility-*.json"))

    datasources = (ROOT / "grafana/provisioning/datasources/facility.yaml").read_text()
    assert yaml.safe_load(datasources)["datasources"][0]["uid"] == DATASOURCE_UID
    for name in re.findall(r"\$\{(\w+)\}", datasources):
        assert grafana["environment"].get(name), f"the datasource file reads {name}; grafana lacks it"
    assert grafana["environment"]["INFLUX_TOKEN"] == "influx-token"
    assert grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD"] == SECRETS["GRAFANA_ADMIN_PASSWORD"]


def test_the_broker_runs_the_shipped_config(stack: dict[str, Any]) -> None:
    mosquitto = stack["mosquitto"]
    assert _mounts(mosquitto)["/mosquitto/config"] == str(ROOT / "deploy" / "mosquitto")
    script = " ".join(mosquitto["command"])
    assert "make-passwords.sh /mosquitto/auth/passwd" in script
    conf = (ROOT / "deploy" / "mosquitto" / "mosquitto.conf").read_text()
    assert "password_file /mosquitto/auth/passwd" in conf
    assert "allow_anonymous false" in conf
