"""docker-compose.yml, checked by `docker-compose config` (Debian's docker-compose 1.29 needs no engine).

Nothing here starts a container: Docker cannot run on this machine. What the stack would run is
checked piece by piece elsewhere: the broker config in test_mosquitto.py, the simulated site's
gateway in test_gateway.py, the collector over TLS in test_tls.py, the dashboards' queries in
tests/grafana/test_queries.py.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from grafana.influxql import DATASOURCE_UID
from ground.settings import MqttEndpoint, Settings
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


def test_the_stack_has_its_services(stack: dict[str, Any]) -> None:
    assert set(stack) == {
        "mosquitto",
        "influxdb",
        "influxdb-tokens",
        "grafana",
        "facility",
        "site-gateway",
        "simulators",
    }
    assert stack["facility"]["command"] == ["serve", "--host", "0.0.0.0", "--port", "8000"]
    assert stack["simulators"]["command"][0] == "simulate"
    assert stack["facility"]["build"]["context"] == str(ROOT)
    assert (ROOT / "Dockerfile").exists()


def test_the_service_gets_valid_settings_and_the_service_account(stack: dict[str, Any]) -> None:
    env = stack["facility"]["environment"]
    settings = Settings(_env_file=None, **{k.removeprefix("FACILITY_").lower(): v for k, v in env.items()})  # type: ignore[call-arg]
    assert settings.admin_token == "admin-token-from-env"
    assert settings.influx_api == "v2"
    assert settings.influx_bucket == stack["influxdb"]["environment"]["DOCKER_INFLUXDB_INIT_BUCKET"]
    assert settings.influx_org == stack["influxdb"]["environment"]["DOCKER_INFLUXDB_INIT_ORG"]
    mqtt = settings.mqtt
    assert (mqtt.host, mqtt.username, mqtt.password) == ("mosquitto", "facility.service", "service-pass")
    acl = (ROOT / "deploy" / "mosquitto" / "acl").read_text()
    assert re.search(rf"^user {re.escape(mqtt.username or '')}$", acl, re.MULTILINE)


def test_the_service_speaks_tls_on_its_own_listener(stack: dict[str, Any]) -> None:
    env = stack["facility"]["environment"]
    mqtt = MqttEndpoint(env["FACILITY_MQTT_URL"], ca_file=Path(env["FACILITY_MQTT_CA_FILE"]))
    assert mqtt.tls and mqtt.port == 8884
    assert _mounts(stack["facility"])[str(mqtt.ca_file)] == str(ROOT / "deploy" / "certs" / "ca.crt")
    listeners = _listeners((ROOT / "deploy" / "mosquitto" / "mosquitto.conf").read_text())
    assert set(listeners) == {"8883", "8884"}
    for port, options in listeners.items():
        assert {"cafile", "certfile", "keyfile"} <= set(options), port
        assert options["allow_anonymous"] == "false", port
    assert listeners["8884"]["password_file"] == "/mosquitto/auth/passwd-service"
    # The devices' listener: a connection's client id is its account's name.
    assert listeners["8883"]["use_username_as_clientid"] == "true"
    assert listeners["8883"]["password_file"] == "/mosquitto/auth/passwd-sites"
    # Only the devices' TLS port is published; the service's stays inside the stack.
    assert stack["mosquitto"]["ports"] == ["0.0.0.0:8883:8883/tcp"]
    certs = _mounts(stack["mosquitto"])
    for name in ("ca.crt", "broker.crt", "broker.key"):
        assert certs[f"/mosquitto/certs/{name}"] == str(ROOT / "deploy" / "certs" / name)
    assert not any(source.endswith("ca.key") for source in certs.values())  # the CA's key stays out


def _listeners(conf: str) -> dict[str, dict[str, str]]:
    """Each listener's port and its options, from a mosquitto.conf with per_listener_settings."""
    assert re.search(r"^per_listener_settings true$", conf, re.MULTILINE)
    listeners: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in conf.splitlines():
        key, _, value = line.partition(" ")
        if key == "listener":
            current = listeners.setdefault(value.split()[0], {})
        elif key and not key.startswith("#") and current is not None and not line.startswith("persistence"):
            current[key] = value
        if line.startswith("persistence"):
            current = None
    return listeners


def test_http_services_are_published_on_loopback_unless_opened(tmp_path: Path) -> None:
    def published(**changes: str) -> dict[str, list[str]]:
        result = config(tmp_path, **SECRETS, **changes)
        assert result.returncode == 0, result.stderr
        services = yaml.safe_load(result.stdout)["services"]
        return {name: service.get("ports", []) for name, service in services.items()}

    closed = published()
    assert closed["influxdb"] == ["127.0.0.1:8086:8086/tcp"]
    assert closed["grafana"] == ["127.0.0.1:3000:3000/tcp"]
    assert closed["facility"] == ["127.0.0.1:8000:8000/tcp"]
    assert [name for name, ports in closed.items() if ports] == [
        "facility",
        "grafana",
        "influxdb",
        "mosquitto",
    ]
    opened = published(PUBLISH_ADDRESS="0.0.0.0", MQTT_ADDRESS="192.0.2.7")
    assert opened["influxdb"] == ["0.0.0.0:8086:8086/tcp"]
    assert opened["grafana"] == ["0.0.0.0:3000:3000/tcp"]
    assert opened["facility"] == ["0.0.0.0:8000:8000/tcp"]
    assert opened["mosquitto"] == ["192.0.2.7:8883:8883/tcp"]


def test_only_the_token_maker_gets_the_influxdb_admin_token(stack: dict[str, Any]) -> None:
    admin = SECRETS["INFLUXDB_ADMIN_TOKEN"]
    holders = [name for name, service in stack.items() if admin in json.dumps(service)]
    assert holders == ["influxdb", "influxdb-tokens"]
    maker = stack["influxdb-tokens"]
    assert maker["environment"]["INFLUX_ADMIN_TOKEN"] == admin
    script = _mounts(maker)["/deploy"]
    assert maker["entrypoint"] == ["python", "/deploy/make_tokens.py"]
    assert (Path(script) / "make_tokens.py").exists()


def _named_volumes(service: dict[str, Any]) -> dict[str, str]:
    """Container path → named volume, of a service's volumes."""
    out = {}
    for volume in service["volumes"]:
        source, target = volume.split(":")[:2]
        if not source.startswith("/"):
            out[target] = source
    return out


def test_the_service_and_grafana_each_read_the_token_made_for_them(stack: dict[str, Any]) -> None:
    maker = stack["influxdb-tokens"]
    made = {
        who: (_named_volumes(maker)[str(Path(maker["environment"][f"{who}_TOKEN_FILE"]).parent)])
        for who in ("SERVICE", "GRAFANA")
    }
    assert made["SERVICE"] != made["GRAFANA"]
    assert maker["environment"]["SERVICE_UID"] == "10001"
    assert "useradd --system --uid 10001" in (ROOT / "Dockerfile").read_text()

    facility = stack["facility"]
    assert "FACILITY_INFLUX_TOKEN" not in facility["environment"]
    script = " ".join(facility["entrypoint"])
    read = re.search(r'FACILITY_INFLUX_TOKEN="\$+\(cat (\S+)\)" exec facility', script)
    assert read, script
    assert _named_volumes(facility)[str(Path(read.group(1)).parent)] == made["SERVICE"]
    for service in ("facility", "grafana"):
        assert (
            stack[service]["depends_on"]["influxdb-tokens"]["condition"] == "service_completed_successfully"
        )

    datasource = (ROOT / "grafana/provisioning/datasources/facility.yaml").read_text()
    header = yaml.safe_load(datasource)["datasources"][0]["secureJsonData"]["httpHeaderValue1"]
    path = re.fullmatch(r"Token \$__file\{(\S+)\}", header)
    assert path, header
    assert _named_volumes(stack["grafana"])[str(Path(path.group(1)).parent)] == made["GRAFANA"]
    # Neither one's folder is the other's.
    assert made["GRAFANA"] not in _named_volumes(facility).values()
    assert made["SERVICE"] not in _named_volumes(stack["grafana"]).values()


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


def test_the_simulators_reach_the_broker_through_their_sites_gateway(stack: dict[str, Any]) -> None:
    sim = MqttEndpoint(stack["simulators"]["environment"]["FACILITY_MQTT_URL"])
    assert (sim.host, sim.port) == ("site-gateway", 1883)
    assert stack["simulators"]["command"][1:3] == ["--sites", "1"]  # the fleet of one site is site-01
    assert list(stack["simulators"]["networks"]) == ["site-01"]  # the site's own network only
    gateway = stack["site-gateway"]
    assert set(gateway["networks"]) == {"default", "site-01"}
    broker = stack["mosquitto"]["environment"]
    assert (gateway["environment"]["GATEWAY_SITE"], gateway["environment"]["GATEWAY_PASSWORD"]) == (
        broker["MQTT_SIMULATOR_SITE"],
        broker["MQTT_SIMULATOR_PASSWORD"],
    )
    assert broker["MQTT_SIMULATOR_PASSWORD"] == "site-pass"
    assert gateway["environment"]["GATEWAY_UPSTREAM"] == "mosquitto:8883"
    assert _mounts(gateway)["/mosquitto/config"] == str(ROOT / "deploy" / "gateway")
    assert _mounts(gateway)[gateway["environment"]["GATEWAY_CA_FILE"]] == str(ROOT / "deploy/certs/ca.crt")
    assert "make-bridge.sh /mosquitto/bridge" in " ".join(gateway["command"])
    conf = (ROOT / "deploy" / "gateway" / "mosquitto.conf").read_text()
    assert "include_dir /mosquitto/bridge" in conf
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
    assert grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD"] == SECRETS["GRAFANA_ADMIN_PASSWORD"]


def test_the_broker_runs_the_shipped_config(stack: dict[str, Any]) -> None:
    mosquitto = stack["mosquitto"]
    assert _mounts(mosquitto)["/mosquitto/config"] == str(ROOT / "deploy" / "mosquitto")
    script = " ".join(mosquitto["command"])
    assert "make-passwords.sh /mosquitto/auth " in script
    assert "copy-certs.sh /mosquitto/certs /mosquitto/auth " in script
    conf = (ROOT / "deploy" / "mosquitto" / "mosquitto.conf").read_text()
    assert "password_file /mosquitto/auth/passwd-sites" in conf
    assert "password_file /mosquitto/auth/passwd-service" in conf
    assert "allow_anonymous true" not in conf
