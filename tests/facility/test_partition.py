"""Two `facility serve` workers sharing 20 sites on one mosquitto and one PostgreSQL, one killed mid-run."""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from facility.pipeline import load_engine_state
from ground.clock import now_ms
from records.db import Database
from records.models import AuditEntry, EngineState, Ticket
from tests.conftest import _postgres_url, wait_until
from tests.fleet import Fleet, Worker, publish
from tests.servers import Mosquitto

# 200,000 readings: 20 sites of 10 tanks, 1,000 each; bench/partition.py runs the same with figures.
READINGS = 200_000
SITES = tuple(f"s{n:02d}" for n in range(1, 21))
TANKS_PER_SITE = 10
ESCALATE_MAJOR_S = 4
ADMIN_TOKEN = "partition-admin-token"
FAULT_RECORD = {
    "cause": "guard pressed SOS by mistake",
    "measures": "called the guard",
    "result": "no danger",
    "emergency_plan_started": True,
    "leadership_informed": True,
    "temporary_measures": "none needed",
    "cause_class": "staff",
}


def sos_latched(db: Database) -> bool:
    """True while an engine's snapshot holds the reader's SOS as an active alarm."""
    with db.read() as s:
        state_ids = s.scalars(select(EngineState.id)).all()
    for state_id in state_ids:
        for device in (load_engine_state(db, state_id) or {}).get("devices", ()):
            if (device["site"], device["device_id"]) == (SITES[-1], "reader-1"):
                return "sos" in device.get("active", {})
    return False


def sos_ticket(db: Database) -> int | None:
    """The ticket of the SOS, once it is there."""
    with db.read() as s:
        return s.scalar(select(Ticket.id).where(Ticket.rule == "sos"))


def ticket_status(db: Database, ticket_id: int) -> str:
    """A ticket's status now."""
    with db.read() as s:
        return str(s.scalar(select(Ticket.status).where(Ticket.id == ticket_id)))


def test_two_workers_share_the_sites_and_a_killed_one_loses_nothing(
    tmp_path: Path, mosquitto: Mosquitto, request: pytest.FixtureRequest
) -> None:
    fleet = Fleet(SITES, TANKS_PER_SITE, READINGS // (len(SITES) * TANKS_PER_SITE))
    database_url = _postgres_url(request)
    env = {
        "FACILITY_ESCALATE_MAJOR_S": str(ESCALATE_MAJOR_S),
        "FACILITY_STATUS_INTERVAL_S": "2",
        "FACILITY_ADMIN_TOKEN": ADMIN_TOKEN,
    }
    a = Worker("worker-a", SITES[:10], mosquitto, database_url, tmp_path, **env)
    b = Worker("worker-b", SITES[10:], mosquitto, database_url, tmp_path, **env)
    share = fleet.total // 2
    a.start()
    b.start()
    done = threading.Event()
    try:

        def send() -> None:
            publish(mosquitto, fleet.messages(now_ms()))
            done.set()

        threading.Thread(target=send, daemon=True).start()
        wait_until(lambda: b.stored() >= share * 0.6, timeout_s=180, what="worker b well under way")
        b.stop(signal.SIGKILL)
        assert not done.is_set(), "the readings should still be coming when worker b dies"
        b.start()
        assert done.wait(180), "publishing did not finish"
        wait_until(lambda: a.stored() == share and b.stored() == share, timeout_s=180, what="every reading")

        # Each worker stored only its own sites, and every reading once.
        assert set(a.stored_by_site()) == set(SITES[:10])
        assert set(b.stored_by_site()) == set(SITES[10:])
        # Each writes its own sites' counts for the dashboards, not the other's.
        wait_until(lambda: a.sites_of("site_status") == set(SITES[:10]), what="worker a's site counts")
        wait_until(lambda: b.sites_of("site_status") == set(SITES[10:]), what="worker b's site counts")
        seqs = {**a.seqs(), **b.seqs()}
        expected = list(range(fleet.readings_per_tank))
        assert {tank: s for tank, s in seqs.items() if s != expected} == {}
        assert len(seqs) == len(SITES) * TANKS_PER_SITE

        db = Database(database_url)
        try:
            faulty = fleet.faulty_tanks()

            def low_tickets() -> list[tuple[str, str | None, int]]:
                with db.read() as s:
                    q = (
                        select(Ticket.site, Ticket.device_id, func.count())
                        .where(Ticket.rule == "water_tank_low")
                        .group_by(Ticket.site, Ticket.device_id)
                    )
                    return [(site, device, n) for site, device, n in s.execute(q)]

            wait_until(lambda: len(low_tickets()) == len(faulty), timeout_s=60, what="every ticket")
            tickets = low_tickets()
            assert {(site, device) for site, device, _ in tickets} == faulty
            assert [t for t in tickets if t[2] != 1] == [], "a fault opened two tickets"

            def escalations() -> dict[int, int]:
                with db.read() as s:
                    q = (
                        select(AuditEntry.ticket_id, func.count())
                        .where(AuditEntry.action == "escalated")
                        .group_by(AuditEntry.ticket_id)
                    )
                    return {ticket: n for ticket, n in s.execute(q)}

            wait_until(lambda: len(escalations()) == len(faulty), timeout_s=60, what="every escalation")
            # A second firing would follow the first within moments; give it a whole escalation delay.
            time.sleep(ESCALATE_MAJOR_S + 2)
            assert {t: n for t, n in escalations().items() if n != 1} == {}, "an escalation fired twice"
            with db.read() as s:
                levels = s.execute(select(Ticket.escalation_level).where(Ticket.rule == "water_tank_low"))
                assert {level for (level,) in levels} == {1}
                # Each worker keeps its engine's snapshot on a row of its own.
                assert len({row_id for (row_id,) in s.execute(select(EngineState.id))}) == 2

            # An SOS of worker b's site, resolved through worker a's API: b, whose engine holds the
            # latched alarm, hears of the resolve and clears it; the next SOS reopens the ticket.
            def sos(seq: int) -> None:
                payload = json.dumps({"ts": now_ms(), "seq": seq, "code": "SOS"}).encode()
                publish(mosquitto, iter([(f"facility/v1/{SITES[-1]}/patrol_reader/reader-1/event", payload)]))

            sos(0)
            wait_until(lambda: sos_ticket(db) is not None, what="the SOS ticket")
            ticket_id = sos_ticket(db)
            assert ticket_id is not None
            wait_until(lambda: sos_latched(db), what="the SOS latched in worker b's engine snapshot")
            api = httpx.Client(
                base_url=f"http://127.0.0.1:{a.port}", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
            )
            with api:
                for action, body in (("acknowledge", {}), ("start", {}), ("resolve", FAULT_RECORD)):
                    answer = api.post(f"/api/v1/tickets/{ticket_id}/{action}", json=body)
                    assert answer.status_code == 200, answer.text
            wait_until(lambda: not sos_latched(db), what="worker b to hear of the resolve")
            sos(1)
            wait_until(lambda: ticket_status(db, ticket_id) == "open", what="the next SOS reopening it")
        finally:
            db.close()
    finally:
        a.stop()
        b.stop()
