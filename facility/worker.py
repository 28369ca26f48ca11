"""A worker of several sharing one records database: what it keeps apart from the others.

A worker given FACILITY_SITES is one of several `facility serve` processes, each with its own
client id and data folder. Its timers and its engine's snapshot are its own, named after its client
id; with no sites given the names are those a single service has always used.
"""

from __future__ import annotations

import contextlib
import logging
import re
import zlib

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.base import BaseScheduler
from sqlalchemy import select

from ground.settings import Settings
from records.db import Database
from records.models import Ticket

log = logging.getLogger(__name__)

TIMERS_TABLE = "apscheduler_jobs"  # APScheduler's default, a single service's
SINGLE_STATE_ID = 1
_NOT_IN_NAME = re.compile(r"[^a-z0-9_]")


def is_partitioned(settings: Settings) -> bool:
    """True for a worker that serves some sites only."""
    return settings.sites is not None


def timers_table(settings: Settings) -> str:
    """The job store's table: a worker's own, so no other worker's scheduler runs its jobs.

    APScheduler runs every job of its table; two schedulers on one table would both run each job.
    PostgreSQL names are at most 63 bytes: a readable part of the client id and its checksum.
    """
    if not is_partitioned(settings):
        return TIMERS_TABLE
    client_id = settings.mqtt_client_id
    readable = _NOT_IN_NAME.sub("_", client_id.lower())[:32]
    return f"{TIMERS_TABLE}_{readable}_{zlib.crc32(client_id.encode()):08x}"


def engine_state_id(settings: Settings) -> int:
    """The engine snapshot's row: 1 for a single service, one of its own for each worker.

    Each worker's engine holds its own sites' devices; on one row they would overwrite each other.
    """
    if not is_partitioned(settings):
        return SINGLE_STATE_ID
    return SINGLE_STATE_ID + 1 + zlib.crc32(settings.mqtt_client_id.encode()) % (2**31 - 2)


def drop_foreign_timers(scheduler: BaseScheduler, db: Database, sites: frozenset[str]) -> int:
    """Remove from a worker's table the timers of tickets of sites it no longer serves; returns how many.

    A worker given other sites than before keeps its table; the sites it gave up have a new worker,
    whose repair gives their tickets the timers they want, so these would fire a second time.
    """
    tickets: dict[str, int] = {}
    for job in scheduler.get_jobs(jobstore="default"):
        prefix, _, number = job.id.rpartition("-")
        if prefix and number.isdigit():  # every ticket timer is named {kind}-{ticket id}
            tickets[job.id] = int(number)
    if not tickets:
        return 0
    with db.read() as s:
        site_of = dict(
            s.execute(select(Ticket.id, Ticket.site).where(Ticket.id.in_(set(tickets.values())))).all()
        )
    # A job whose ticket is gone does nothing when it fires; it is left alone.
    foreign = [
        job_id for job_id, ticket in tickets.items() if ticket in site_of and site_of[ticket] not in sites
    ]
    for job_id in foreign:
        with contextlib.suppress(JobLookupError):
            scheduler.remove_job(job_id, jobstore="default")
    if foreign:
        log.info("dropped %d timer(s) of tickets of sites this worker no longer serves", len(foreign))
    return len(foreign)
