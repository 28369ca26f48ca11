"""Every operation, fuzzed from the API's own OpenAPI: never a 5xx, and every answer as documented."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import Api, Publisher, wait_until

pytestmark = pytest.mark.services

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# Per operation and pass: enough to reach every parameter and body field, while the whole test
# stays within two minutes on two cores.
EXAMPLES = 40


def _created(api: Api, path: str, body: dict[str, Any]) -> Any:
    r = api.post(path, body)
    assert r.status_code == 201, (path, r.text)
    return r.json().get("id")


@pytest.fixture
def records(api: Api, publisher: Publisher) -> dict[str, Any]:
    """One record of each kind, for the path parameters of a pass that reaches past "not found"."""
    breaker = "facility/v1/s1/lighting_circuit/light-1/telemetry"
    publisher.publish_all(
        [(breaker, {"ts": int(time.time() * 1000), "seq": 0, "metrics": {"breaker_tripped": True}})]
    )
    wait_until(lambda: bool(api.get("/api/v1/alarms").json()), what="the breaker's alarm")
    _created(api, "/api/v1/devices", {"site": "s1", "device_id": "pump-1", "device_type": "water_pump"})
    checkpoint = {"id": "cp-gate", "site": "s1", "name": "Gate", "tag": "tag-gate"}
    stops = [{"checkpoint": "cp-gate", "after_min": 0}]
    return {
        "alarm_id": api.get("/api/v1/alarms").json()[0]["id"],
        "ticket_id": _created(api, "/api/v1/tickets", {"site": "s1", "title": "Leak in B2"}),
        "site": "s1",
        "device_id": "pump-1",
        "checkpoint_id": _created(api, "/api/v1/patrol/checkpoints", checkpoint),
        "route_id": _created(
            api, "/api/v1/patrol/routes", {"id": "night", "site": "s1", "name": "Night", "checkpoints": stops}
        ),
        "plan_id": _created(
            api, "/api/v1/patrol/plans", {"route": "night", "start_times": ["22:00"], "guards": ["g-1"]}
        ),
        "round_id": _created(
            api,
            "/api/v1/patrol/rounds",
            {"route": "night", "guard": "g-1", "start": datetime.now(UTC).isoformat()},
        ),
        "token_id": _created(api, "/api/v1/tokens", {"name": "g-1", "role": "guard"}),
    }


def test_every_operation_answers_as_documented(api: Api, records: dict[str, Any]) -> None:
    schema = schemathesis.openapi.from_url(f"{api.url}/openapi.json")
    operations = []
    for result in schema.get_all_operations():
        if not isinstance(result, Ok):
            pytest.fail(f"the API's own OpenAPI does not load: {result.err()}")
        operations.append(result.ok())
    assert len(operations) >= 29, [op.label for op in operations]
    failures: list[str] = []
    for operation in operations:
        takes_input = any(len(part) for part in (operation.path_parameters, operation.query, operation.body))
        passes: list[tuple[str, GenerationMode, dict[str, Any]]] = [
            ("valid input", GenerationMode.POSITIVE, {})
        ]
        if takes_input:  # an operation that takes nothing cannot be given anything invalid
            passes.append(("invalid input", GenerationMode.NEGATIVE, {}))
        if len(operation.path_parameters):
            known = {p.name: records[p.name] for p in operation.path_parameters if p.name in records}
            passes.append(("valid input on existing records", GenerationMode.POSITIVE, known))
        for name, mode, path_parameters in passes:
            strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_parameters)

            @given(case=strategy)
            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                derandomize=True,
                phases=[Phase.generate, Phase.shrink],
                suppress_health_check=list(HealthCheck),
            )
            def fuzz(case: Any) -> None:
                case.call_and_validate(headers=api.admin, checks=CHECKS)

            try:
                fuzz()
            except (Exception, BaseExceptionGroup) as exc:  # every operation's failures, not only the first
                failures.append(f"{operation.label}, {name}:\n{exc}")
    assert not failures, "\n\n".join(failures)
