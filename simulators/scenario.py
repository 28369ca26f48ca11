"""Fault scenarios: a story told in device time, played over MQTT, with the tickets it must produce.

The parts live apart: the file and its checks in `scenario_file`, the loaded story in
`scenario_story`, what it must produce in `scenario_expect`, the messages it sends in
`scenario_messages` (pure) and playing them over MQTT in `scenario_play`. This module keeps the
names they are known by.
"""

from __future__ import annotations

from ground.datafiles import format_duration
from simulators.scenario_expect import ExpectedAlarm, ExpectedTicket
from simulators.scenario_file import (
    MAX_DEFAULT_REPORT_MS,
    MAX_MESSAGES,
    SCENARIOS_DIR,
    ScenarioError,
    load,
    parse,
    scenario_paths,
)
from simulators.scenario_messages import Outgoing, default_start, messages
from simulators.scenario_play import ACK_TIMEOUT_S, CONNECT_TIMEOUT_S, run
from simulators.scenario_story import Scenario, ScenarioDevice, Step

__all__ = [
    "ACK_TIMEOUT_S",
    "CONNECT_TIMEOUT_S",
    "MAX_DEFAULT_REPORT_MS",
    "MAX_MESSAGES",
    "SCENARIOS_DIR",
    "ExpectedAlarm",
    "ExpectedTicket",
    "Outgoing",
    "Scenario",
    "ScenarioDevice",
    "ScenarioError",
    "Step",
    "default_start",
    "format_duration",
    "load",
    "messages",
    "parse",
    "run",
    "scenario_paths",
]
