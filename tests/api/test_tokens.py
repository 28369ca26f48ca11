"""Tokens: listed without the secret, revoked and expired at once, and failed guesses held back."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from api.throttle import AuthFailures, client_key
from tests.conftest import ADMIN_TOKEN, Api

pytestmark = pytest.mark.services


def _issue(api: Api, **body: Any) -> dict[str, Any]:
    r = api.post("/api/v1/tokens", {"name": "eng-1", "role": "engineer", **body})
    assert r.status_code == 201, r.text
    issued: dict[str, Any] = r.json()
    return issued


def _status(api: Api, token: str, address: str | None = None) -> int:
    headers = {"Authorization": f"Bearer {token}"}
    if address:
        headers["X-Forwarded-For"] = address
    return int(api.http.get("/api/v1/tickets", headers=headers).status_code)


def test_a_token_revoked_through_the_api_is_refused_at_once(api: Api) -> None:
    issued = _issue(api)
    other = _issue(api, name="mgr-1", role="manager")
    assert _status(api, issued["token"]) == 200  # now remembered by the token book
    listed = api.get("/api/v1/tokens")
    assert listed.status_code == 200
    assert issued["token"] not in listed.text and "sha256" not in listed.text
    [entry] = [t for t in listed.json() if t["id"] == issued["id"]]
    assert entry == {k: v for k, v in issued.items() if k != "token"}
    assert set(entry) == {"id", "name", "role", "created_at", "expires_at", "revoked_at"}
    assert (entry["name"], entry["role"], entry["expires_at"], entry["revoked_at"]) == (
        "eng-1",
        "engineer",
        None,
        None,
    )

    assert api.http.delete(f"/api/v1/tokens/{issued['id']}", headers=api.admin).status_code == 200
    assert _status(api, issued["token"]) == 401, "a revoked token is refused at once, remembered or not"
    assert _status(api, other["token"]) == 200, "other tokens are untouched"
    again = api.http.delete(f"/api/v1/tokens/{issued['id']}", headers=api.admin)
    assert again.status_code == 200
    [entry] = [t for t in api.get("/api/v1/tokens").json() if t["id"] == issued["id"]]
    assert entry["revoked_at"] == again.json()["revoked_at"] is not None, (
        "revoking twice keeps the first time"
    )
    assert api.http.delete("/api/v1/tokens/999999", headers=api.admin).status_code == 404
    manager = {"Authorization": f"Bearer {other['token']}"}
    assert api.http.delete(f"/api/v1/tokens/{other['id']}", headers=manager).status_code == 403
    assert api.http.get("/api/v1/tokens", headers=manager).status_code == 403
    assert _status(api, other["token"]) == 200


def test_a_token_expires_even_while_remembered(api: Api) -> None:
    issued = _issue(api, expires_in_s=2)
    expires_at = datetime.fromisoformat(issued["expires_at"])
    assert timedelta(seconds=1) < expires_at - datetime.now(UTC) <= timedelta(seconds=2)
    assert _status(api, issued["token"]) == 200  # remembered for 60 s from here
    time.sleep(max(0.0, (expires_at - datetime.now(UTC)).total_seconds()) + 0.05)
    assert _status(api, issued["token"]) == 401

    until = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    dated = _issue(api, expires_at=until.astimezone(timezone(timedelta(hours=8))).isoformat())
    assert dated["expires_at"] == until.isoformat().replace("+00:00", "Z")
    assert _status(api, dated["token"]) == 200
    [entry] = [t for t in api.get("/api/v1/tokens").json() if t["id"] == dated["id"]]
    assert entry["expires_at"] == dated["expires_at"]


@pytest.mark.parametrize(
    ("expiry", "field"),
    [
        ({"expires_in_s": 0}, "expires_in_s"),
        ({"expires_in_s": 10**12}, "expires_in_s"),
        ({"expires_at": "2020-01-01T00:00:00Z"}, "expires_at"),
        ({"expires_at": "2099-01-01T00:00:00"}, "expires_at"),
        ({"expires_at": "9999-12-31T23:59:59-23:59"}, "expires_at"),
    ],
)
def test_an_expiry_in_the_past_or_unbounded_is_a_422(api: Api, expiry: dict[str, Any], field: str) -> None:
    r = api.post("/api/v1/tokens", {"name": "x", "role": "guard", **expiry})
    assert r.status_code == 422, r.text
    assert [d["loc"] for d in r.json()["detail"]] == [["body", field]]


def test_both_expiries_at_once_is_a_422(api: Api) -> None:
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    r = api.post("/api/v1/tokens", {"name": "x", "role": "guard", "expires_in_s": 60, "expires_at": later})
    assert r.status_code == 422 and "not both" in r.text
    assert all(t["name"] != "x" for t in api.get("/api/v1/tokens").json())


def test_repeated_failures_from_one_address_are_held_back_but_valid_tokens_never(api: Api) -> None:
    issued = _issue(api)
    guesser = "203.0.113.7"
    for i in range(20):
        assert _status(api, f"guess-{i}", guesser) == 401, i
    held = api.http.get(
        "/api/v1/tickets", headers={"Authorization": "Bearer guess", "X-Forwarded-For": guesser}
    )
    assert held.status_code == 429
    assert 1 <= int(held.headers["Retry-After"]) <= 60
    assert "try again" in held.json()["detail"]
    no_token = api.http.get("/api/v1/alarms", headers={"X-Forwarded-For": guesser})
    assert no_token.status_code == 429
    # A valid token is never held back: from the guessing address itself, or from any other.
    assert _status(api, ADMIN_TOKEN, guesser) == 200
    assert _status(api, issued["token"], guesser) == 200
    assert _status(api, issued["token"], "192.0.2.1") == 200
    # Other addresses are not held back by this one's failures.
    assert _status(api, "guess", "192.0.2.1") == 401
    assert _status(api, "guess") == 401


def test_the_failure_counts_forget_old_failures_and_stay_bounded() -> None:
    now = [1000.0]
    failures = AuthFailures(limit=3, window_s=60, max_addresses=100, clock=lambda: now[0])
    for _ in range(3):
        assert failures.retry_after("10.0.0.1") is None
        failures.record("10.0.0.1")
        now[0] += 1
    assert failures.retry_after("10.0.0.1") == 57  # at 1003; the first failure leaves the window at 1060
    now[0] = 1060.5
    assert failures.retry_after("10.0.0.1") is None, "one more try once the oldest failure is out"
    failures.record("10.0.0.1")
    assert failures.retry_after("10.0.0.1") == 1
    # Ten thousand addresses leave at most a hundred counts behind, the newest.
    for i in range(10_000):
        failures.record(f"10.1.{i // 256}.{i % 256}")
    assert len(failures) == 100
    assert failures.retry_after("10.0.0.1") is None
    # One IPv6 client holds a /64; its addresses count together.
    assert client_key("2001:db8::1") == client_key("2001:db8::ffff:1") == "2001:db8::/64"
    assert client_key("::ffff:192.0.2.1") == "192.0.2.1"
