"""Settings: documented once in .env.example, validated at start-up with the field named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from facility.cli import main
from ground.settings import MqttEndpoint, Settings

ROOT = Path(__file__).resolve().parents[2]


def test_every_setting_is_documented_in_env_example_with_its_default() -> None:
    example = (ROOT / ".env.example").read_text()
    documented = {
        line.split("=", 1)[0]: line.split("=", 1)[1]
        for line in example.splitlines()
        if line.startswith("FACILITY_")
    }
    defaults = Settings(_env_file=None)  # type: ignore[call-arg]
    for name in Settings.model_fields:
        key = f"FACILITY_{name.upper()}"
        assert key in documented, f"{key} is not in .env.example"
        value = getattr(defaults, name)
        shown = "" if value is None else str(value)
        if isinstance(value, float) and value.is_integer():
            shown = str(int(value))
        assert documented[key] == shown, f"{key}: .env.example says {documented[key]!r}"
    # Loaded as a .env file, the example changes nothing.
    assert Settings(_env_file=ROOT / ".env.example") == defaults  # type: ignore[call-arg]


def test_mqtt_url_is_parsed_and_a_bad_one_names_the_field() -> None:
    e = MqttEndpoint("mqtts://svc:p%40ss@broker.example:8884")
    assert (e.tls, e.host, e.port, e.username, e.password) == (
        True,
        "broker.example",
        8884,
        "svc",
        "p@ss",
    )
    assert repr(e) == "mqtts://svc:***@broker.example:8884"
    assert MqttEndpoint("mqtt://h").port == 1883
    bad: list[dict[str, Any]] = [{"mqtt_url": "http://h"}, {"influx_api": "v3"}]
    for values in bad:
        with pytest.raises(ValidationError, match=next(iter(values))):
            Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_cli_refuses_invalid_settings_with_exit_code_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FACILITY_BATCH_SIZE", "0")
    assert main(["dead-letters"]) == 2
    assert "batch_size" in capsys.readouterr().err


def test_sites_are_a_comma_separated_list_of_site_ids_and_a_bad_one_is_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FACILITY_SITES", "s01, s02,,s01")
    assert Settings(_env_file=None).sites == frozenset({"s01", "s02"})  # type: ignore[call-arg]
    monkeypatch.setenv("FACILITY_SITES", "")
    assert Settings(_env_file=None).sites is None  # type: ignore[call-arg]
    monkeypatch.setenv("FACILITY_SITES", "s01,Tower A")
    with pytest.raises(ValidationError, match=r"(?s)sites.*'Tower A'"):
        Settings(_env_file=None)  # type: ignore[call-arg]
