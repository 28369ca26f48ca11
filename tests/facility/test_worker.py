"""A worker of several: its timers' table, its snapshot's row, and the timers of sites it gave up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler

from facility.worker import TIMERS_TABLE, drop_foreign_timers, engine_state_id, timers_table
from ground.clock import now_ms
from tests.conftest import FedPipeline, make_settings
from tickets.service import TicketFilter


def test_a_single_service_keeps_its_names_and_each_worker_gets_its_own(tmp_path: Path) -> None:
    single = make_settings(tmp_path, mqtt_client_id="facility-collector")
    assert (timers_table(single), engine_state_id(single)) == (TIMERS_TABLE, 1)
    w1 = make_settings(tmp_path, mqtt_client_id="facility-w1", sites="s01")
    w2 = make_settings(tmp_path, mqtt_client_id="facility-w2", sites="s02")
    assert timers_table(w1).startswith("apscheduler_jobs_facility_w1_")
    assert len({timers_table(w1), timers_table(w2), TIMERS_TABLE}) == 3
    assert len({engine_state_id(w1), engine_state_id(w2), 1}) == 3
    long = make_settings(tmp_path, mqtt_client_id="x" * 200, sites="s01")
    assert len(timers_table(long)) <= 63  # PostgreSQL's longest name
    assert 1 < engine_state_id(long) < 2**31  # an integer column


def noop(_ticket: int) -> None:
    """A job that does nothing."""


def test_timers_of_tickets_of_sites_given_up_are_dropped(tmp_path: Path, pipeline: FedPipeline) -> None:
    for site in ("s1", "s2"):
        topic = f"facility/v1/{site}/chiller/chiller-1/telemetry"
        pipeline.deliver(topic, {"ts": now_ms(), "seq": 0, "metrics": {"tripped": True}})
    ticket_of = {t.site: t.id for t in pipeline.tickets.list(TicketFilter())}
    scheduler = BackgroundScheduler(
        jobstores={"default": SQLAlchemyJobStore(url=f"sqlite:///{tmp_path / 'timers.db'}")}, timezone=UTC
    )
    scheduler.start(paused=True)
    try:
        later = datetime.now(UTC) + timedelta(hours=1)
        for job_id in (f"escalate-{ticket_of['s1']}", f"escalate-{ticket_of['s2']}", "escalate-999999"):
            scheduler.add_job(noop, "date", run_date=later, id=job_id, args=[0])
        assert drop_foreign_timers(scheduler, pipeline.tickets.db, frozenset({"s1"})) == 1
        left = {job.id for job in scheduler.get_jobs()}
        assert left == {f"escalate-{ticket_of['s1']}", "escalate-999999"}  # a gone ticket's: left alone
    finally:
        scheduler.shutdown(wait=False)
