"""Staff accounts over real HTTP: users, log-ins and their lock, and what a role and its sites let one see."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.conftest import Api, Publisher, wait_until

pytestmark = pytest.mark.services

PASSWORD = "correct horse battery"
ELEVATOR = "facility/v1/s1/elevator/elev-3/telemetry"


def add_user(api: Api, username: str, role: str, sites: tuple[str, ...] = ()) -> dict[str, Any]:
    """Add a user as the admin."""
    r = api.post("/api/v1/users", {"username": username, "password": PASSWORD, "role": role, "sites": sites})
    assert r.status_code == 201, r.text
    added: dict[str, Any] = r.json()
    return added


def log_in(api: Api, username: str, password: str = PASSWORD, address: str | None = None) -> httpx.Response:
    """POST the log-in, from `address` (as a proxy in front would say) or from the test's own."""
    headers = {"X-Forwarded-For": address} if address else {}
    body = {"username": username, "password": password}
    return api.http.post("/api/v1/auth/login", json=body, headers=headers)


def token_of(api: Api, username: str, role: str, sites: tuple[str, ...] = ()) -> str:
    """A new user's log-in token."""
    add_user(api, username, role, sites)
    r = log_in(api, username)
    assert r.status_code == 200, r.text
    token: str = r.json()["access_token"]
    return token


def new_ticket(api: Api, site: str, title: str, token: str | None = None, **more: str) -> dict[str, Any]:
    """A ticket opened through the API, by the admin unless a token is given."""
    r = api.post(
        "/api/v1/tickets", {"site": site, "title": title, **more}, **({"token": token} if token else {})
    )
    assert r.status_code == 201, r.text
    ticket: dict[str, Any] = r.json()
    return ticket


def test_an_admin_adds_lists_and_reads_users(api: Api) -> None:
    added = add_user(api, "eve", "engineer", ("s1", "s2"))
    assert set(added) == {"username", "role", "sites", "created_at", "password_changed_at", "disabled_at"}
    assert (added["username"], added["role"], added["sites"], added["disabled_at"]) == (
        "eve",
        "engineer",
        ["s1", "s2"],
        None,
    )
    add_user(api, "bob", "guard")
    listed = api.get("/api/v1/users")
    assert listed.status_code == 200
    assert [(u["username"], u["role"], u["sites"]) for u in listed.json()] == [
        ("bob", "guard", []),
        ("eve", "engineer", ["s1", "s2"]),
    ]
    assert PASSWORD not in listed.text and "argon2" not in listed.text and "hash" not in listed.text
    assert api.get("/api/v1/users/eve").json() == added
    assert api.get("/api/v1/users/nobody").status_code == 404

    again = api.post("/api/v1/users", {"username": "eve", "password": "other password", "role": "admin"})
    assert again.status_code == 409
    assert api.get("/api/v1/users/eve").json()["role"] == "engineer"
    assert log_in(api, "eve", "other password").status_code == 401


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"password": "7 chars"}, "password"),
        ({"password": "x" * 257}, "password"),
        ({"role": "root"}, "role"),
        ({"sites": ["S 1"]}, "sites"),
        ({"username": "Carol"}, "username"),
        ({"username": ""}, "username"),
    ],
)
def test_an_invalid_user_is_a_422_naming_the_field(api: Api, change: dict[str, Any], field: str) -> None:
    r = api.post("/api/v1/users", {"username": "carol", "password": PASSWORD, "role": "guard", **change})
    assert r.status_code == 422, r.text
    assert {d["loc"][1] for d in r.json()["detail"]} == {field}
    assert api.get("/api/v1/users").json() == []


def test_only_an_admin_manages_users(api: Api) -> None:
    add_user(api, "bob", "guard")
    boss = token_of(api, "boss", "manager")
    machine = api.post("/api/v1/tokens", {"name": "mgr-1", "role": "manager"}).json()["token"]
    for token in (boss, machine):
        headers = {"Authorization": f"Bearer {token}"}
        body = {"username": "mallory", "password": PASSWORD, "role": "admin"}
        assert api.post("/api/v1/users", body, token=token).status_code == 403
        assert api.get("/api/v1/users", token=token).status_code == 403
        assert api.get("/api/v1/users/bob", token=token).status_code == 403
        assert api.post("/api/v1/users/bob/disable", token=token).status_code == 403
        put = api.http.put("/api/v1/users/bob/password", json={"password": "taken over!"}, headers=headers)
        assert put.status_code == 403
    assert [u["username"] for u in api.get("/api/v1/users").json()] == ["bob", "boss"]
    assert log_in(api, "bob").status_code == 200, "bob's account is as it was"
    # An admin who logs in may manage users too.
    admin = token_of(api, "root-1", "admin")
    assert api.get("/api/v1/users", token=admin).status_code == 200


def test_a_log_in_gives_a_bearer_token_that_acts_with_the_users_role(api: Api, service: Any) -> None:
    add_user(api, "eve", "engineer", ("s1",))
    add_user(api, "gus", "guard")
    before = datetime.now(UTC)
    r = log_in(api, "eve")
    assert r.status_code == 200, r.text
    answer = r.json()
    assert set(answer) == {"access_token", "token_type", "role", "expires_at", "username", "sites"}
    assert (answer["token_type"], answer["role"], answer["username"], answer["sites"]) == (
        "bearer",
        "engineer",
        "eve",
        ["s1"],
    )
    assert len(answer["access_token"]) >= 32
    session = timedelta(hours=service.settings.session_hours)
    expires_at = datetime.fromisoformat(answer["expires_at"])
    assert before + session <= expires_at <= datetime.now(UTC) + session

    eve = answer["access_token"]
    gus = log_in(api, "gus").json()["access_token"]
    assert gus != eve
    ticket = new_ticket(api, "s1", "Lobby light flickering", token=gus)  # a guard reports
    assert ticket["audit"][0]["actor"] == "gus"
    assert api.post(f"/api/v1/tickets/{ticket['id']}/acknowledge", token=gus).status_code == 403
    acked = api.post(f"/api/v1/tickets/{ticket['id']}/acknowledge", token=eve)
    assert acked.status_code == 200 and acked.json()["status"] == "acknowledged"
    assert acked.json()["audit"][-1]["actor"] == "eve"
    assert api.get("/api/v1/users", token=eve).status_code == 403
    # Each log-in is a token of its own.
    again = log_in(api, "eve").json()["access_token"]
    assert again != eve and api.get("/api/v1/tickets", token=again).status_code == 200


def test_a_wrong_password_and_an_unknown_user_get_the_same_answer(api: Api) -> None:
    add_user(api, "eve", "engineer")
    wrong = log_in(api, "eve", "not the password")
    unknown = log_in(api, "nobody", PASSWORD)
    other_case = log_in(api, "Eve", PASSWORD)
    for r in (wrong, unknown, other_case):
        assert r.status_code == 401
        assert "access_token" not in r.text
    assert wrong.json() == unknown.json() == other_case.json()


def test_five_failures_lock_that_user_at_that_address_even_with_the_right_password(api: Api) -> None:
    add_user(api, "eve", "engineer")
    add_user(api, "bob", "guard")
    for attempt in range(5):
        assert log_in(api, "eve", f"guess {attempt}").status_code == 401, attempt
    locked = log_in(api, "eve")
    assert locked.status_code == 429
    assert 15 * 60 - 30 <= int(locked.headers["Retry-After"]) <= 15 * 60
    assert "access_token" not in locked.text
    assert log_in(api, "EVE").status_code == 429, "the lock holds whatever the name's case"
    # Another user at the same address, and the same user elsewhere, log in.
    assert log_in(api, "bob").status_code == 200
    assert log_in(api, "eve", address="203.0.113.9").status_code == 200
    assert log_in(api, "eve").status_code == 429, "still locked where the guessing came from"


def test_logging_out_ends_the_token(api: Api) -> None:
    token = token_of(api, "eve", "engineer")
    other = log_in(api, "eve").json()["access_token"]
    assert api.get("/api/v1/tickets", token=token).status_code == 200  # now remembered
    assert api.post("/api/v1/auth/logout", token=token).status_code == 204
    assert api.get("/api/v1/tickets", token=token).status_code == 401
    assert api.get("/api/v1/tickets", token=other).status_code == 200, "another session goes on"
    assert api.post("/api/v1/auth/logout", token=token).status_code == 204, "logging out twice is harmless"
    assert api.post("/api/v1/auth/logout", token=None).status_code == 204
    assert api.get("/api/v1/tickets", token=other).status_code == 200


def test_disabling_a_user_ends_its_tokens_and_its_log_ins(api: Api) -> None:
    token = token_of(api, "eve", "engineer")
    bob = token_of(api, "bob", "engineer")
    assert api.get("/api/v1/tickets", token=token).status_code == 200  # now remembered
    r = api.post("/api/v1/users/eve/disable")
    assert r.status_code == 200 and r.json()["disabled_at"] is not None
    assert api.get("/api/v1/tickets", token=token).status_code == 401
    refused = log_in(api, "eve")
    assert refused.status_code == 401
    assert refused.json() == log_in(api, "nobody").json(), "a disabled account is not told apart"
    assert api.get("/api/v1/users/eve").json()["disabled_at"] == r.json()["disabled_at"]
    assert api.get("/api/v1/tickets", token=bob).status_code == 200
    assert api.post("/api/v1/users/nobody/disable").status_code == 404


def test_a_new_password_ends_the_users_tokens(api: Api) -> None:
    token = token_of(api, "eve", "engineer")
    bob = token_of(api, "bob", "engineer")
    assert api.get("/api/v1/tickets", token=token).status_code == 200  # now remembered
    url = "/api/v1/users/eve/password"
    assert api.http.put(url, json={"password": "short"}, headers=api.admin).status_code == 422
    assert api.get("/api/v1/tickets", token=token).status_code == 200, "a refused password changes nothing"
    r = api.http.put(url, json={"password": "a brand new passphrase"}, headers=api.admin)
    assert r.status_code == 200, r.text
    assert r.json()["password_changed_at"] > r.json()["created_at"]
    assert api.get("/api/v1/tickets", token=token).status_code == 401
    assert log_in(api, "eve").status_code == 401
    fresh = log_in(api, "eve", "a brand new passphrase")
    assert fresh.status_code == 200
    assert api.get("/api/v1/tickets", token=fresh.json()["access_token"]).status_code == 200
    assert api.get("/api/v1/tickets", token=bob).status_code == 200
    missing = api.http.put("/api/v1/users/nobody/password", json={"password": PASSWORD}, headers=api.admin)
    assert missing.status_code == 404


def test_a_user_limited_to_a_site_sees_and_acts_on_that_site_only(api: Api) -> None:
    ours = new_ticket(api, "s1", "Pump noisy")
    theirs = new_ticket(api, "s2", "Gate stuck")
    for site, device in (("s1", "tank-1"), ("s2", "tank-2")):
        body = {"site": site, "device_id": device, "device_type": "water_tank"}
        assert api.post("/api/v1/devices", body).status_code == 201
    eve = token_of(api, "eve", "engineer", ("s1",))

    assert [t["id"] for t in api.get("/api/v1/tickets", token=eve).json()] == [ours["id"]]
    assert api.get("/api/v1/tickets", token=eve, params={"site": "s2"}).json() == []
    assert [t["id"] for t in api.get("/api/v1/tickets", token=eve, params={"site": "s1"}).json()] == [
        ours["id"]
    ]
    assert api.get(f"/api/v1/tickets/{theirs['id']}", token=eve).status_code == 404
    assert api.post(f"/api/v1/tickets/{theirs['id']}/acknowledge", token=eve).status_code == 404
    assert api.get(f"/api/v1/tickets/{theirs['id']}").json()["status"] == "open", "not acted on"
    assert api.post(f"/api/v1/tickets/{ours['id']}/acknowledge", token=eve).status_code == 200
    r = api.post("/api/v1/tickets", {"site": "s2", "title": "Leak"}, token=eve)
    assert r.status_code == 403
    assert [t["title"] for t in api.get("/api/v1/tickets", params={"site": "s2"}).json()] == ["Gate stuck"]
    assert new_ticket(api, "s1", "Leak", token=eve)["site"] == "s1"

    assert [d["device_id"] for d in api.get("/api/v1/devices", token=eve).json()] == ["tank-1"]
    assert api.get("/api/v1/devices", token=eve, params={"site": "s2"}).json() == []
    assert api.get("/api/v1/devices/s1/tank-1", token=eve).status_code == 200
    assert api.get("/api/v1/devices/s2/tank-2", token=eve).status_code == 404
    history = "/api/v1/devices/s2/tank-2/history"
    assert api.get(history, token=eve, params={"metric": "level_pct"}).status_code == 404
    body = {"site": "s2", "device_id": "tank-3", "device_type": "water_tank"}
    assert api.post("/api/v1/devices", body, token=eve).status_code == 403
    assert api.get("/api/v1/devices/s2/tank-3").status_code == 404, "not registered"
    # Dead letters may name any site, so only users of every site read them.
    assert api.get("/api/v1/dead-letters", token=eve).status_code == 403
    assert api.get("/api/v1/dead-letters", token=token_of(api, "max", "engineer")).status_code == 200


def test_the_front_desk_records_and_follows_occupants_reports_only(api: Api, publisher: Publisher) -> None:
    assert (
        api.post(
            "/api/v1/devices", {"site": "s1", "device_id": "elev-3", "device_type": "elevator"}
        ).status_code
        == 201
    )
    t0 = int(time.time() * 1000)
    publisher.publish_all([(ELEVATOR, _trapped(seq, t0)) for seq in range(5)])  # 20 s of device time
    wait_until(
        lambda: bool(api.get("/api/v1/tickets", params={"source": "alarm"}).json()), what="alarm ticket"
    )
    [alarm] = api.get("/api/v1/tickets", params={"source": "alarm"}).json()
    planned = new_ticket(api, "s1", "Service the pumps", source="maintenance")
    desk = token_of(api, "fay", "front_desk")

    report = new_ticket(api, "s1", "No hot water in 5C", token=desk, reporter="5C")
    assert (report["source"], report["audit"][0]["actor"]) == ("occupant", "fay")
    explicit = new_ticket(api, "s1", "Door of 2A will not lock", token=desk, source="occupant")
    r = api.post("/api/v1/tickets", {"site": "s1", "title": "x", "source": "maintenance"}, token=desk)
    assert r.status_code == 403

    listed = [t["id"] for t in api.get("/api/v1/tickets", token=desk).json()]
    assert listed == [explicit["id"], report["id"]]
    assert api.get("/api/v1/tickets", token=desk, params={"source": "maintenance"}).json() == []
    assert api.get("/api/v1/tickets", token=desk, params={"source": "alarm"}).json() == []
    assert api.get(f"/api/v1/tickets/{report['id']}", token=desk).status_code == 200
    for hidden in (alarm, planned):
        assert api.get(f"/api/v1/tickets/{hidden['id']}", token=desk).status_code == 404
    for any_ticket in (report, alarm, planned):
        assert api.post(f"/api/v1/tickets/{any_ticket['id']}/acknowledge", token=desk).status_code == 403
    for path in (
        "/api/v1/devices",
        "/api/v1/devices/s1/elev-3",
        "/api/v1/alarms",
        "/api/v1/patrol/checkpoints",
    ):
        assert api.get(path, token=desk).status_code == 403, path


def _trapped(seq: int, t0: int) -> dict[str, Any]:
    """An elevator stopped between floors with someone inside."""
    return {
        "ts": t0 + seq * 5000,
        "seq": seq,
        "metrics": {"occupied": True, "moving": False, "door": "closed", "in_door_zone": False, "floor": 7},
    }


def test_an_admin_changes_a_users_role_and_sites_and_the_token_follows(api: Api) -> None:
    token = token_of(api, "rita", "guard", ("s1",))
    s2 = new_ticket(api, "s2", "Lift noise")
    assert api.post(f"/api/v1/tickets/{s2['id']}/acknowledge", token=token).status_code == 403
    changed = api.http.patch(
        "/api/v1/users/rita", json={"role": "engineer", "sites": ["s2"]}, headers=api.admin
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["role"], changed.json()["sites"]) == ("engineer", ["s2"])
    # The same token, with the role and sites the user has now.
    assert api.post(f"/api/v1/tickets/{s2['id']}/acknowledge", token=token).status_code == 200
    bad = api.http.patch("/api/v1/users/rita", json={"sites": ["Not A Site"]}, headers=api.admin)
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"][:2] == ["body", "sites"]
    missing = api.http.patch("/api/v1/users/nobody", json={"role": "guard"}, headers=api.admin)
    assert missing.status_code == 404


def test_deleting_a_user_disables_it_and_keeps_it_listed(api: Api) -> None:
    token = token_of(api, "sam", "engineer")
    gone = api.http.delete("/api/v1/users/sam", headers=api.admin)
    assert gone.status_code == 200 and gone.json()["disabled_at"] is not None
    assert api.get("/api/v1/tickets", token=token).status_code == 401
    assert log_in(api, "sam").status_code == 401
    assert "sam" in [u["username"] for u in api.get("/api/v1/users").json()]
    disabled = api.http.patch("/api/v1/users/sam", json={"disabled": True}, headers=api.admin)
    assert disabled.status_code == 200
