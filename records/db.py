"""The records database: engine, sessions, and migrations to the current schema at start-up."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).parent / "migrations"
# The newest migration's revision; tests/records/test_migrations.py checks that it is Alembic's head.
HEAD = "0011"


def database_url(configured: str | None, data_dir: Path) -> str:
    """FACILITY_DATABASE_URL, or an SQLite file in the data folder."""
    return configured or sqlite_file_url(data_dir, "records.db")


def sqlite_file_url(data_dir: Path, name: str) -> str:
    """The URL of an SQLite file in the data folder, which is made if need be."""
    data_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(data_dir / name).resolve()}"


class EncodedJson:
    """A value for a JSON column that is JSON already (UTF-8): written as it is, not encoded again."""

    __slots__ = ("encoded",)

    def __init__(self, encoded: bytes | bytearray) -> None:
        self.encoded = encoded


def _strict_json(value: Any) -> str:
    """JSON for a column; NaN and Infinity are refused on SQLite as PostgreSQL refuses them."""
    # Rather than storing what PostgreSQL (and a strict JSON reader) would refuse later.
    if isinstance(value, EncodedJson):
        return value.encoded.decode()
    return json.dumps(value, allow_nan=False)


_UNAVAILABLE = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.DisconnectionError,
    sa_exc.TimeoutError,
)


def is_transient(error: BaseException) -> bool:
    """True when the database could not be reached or written (down, locked, read-only, full): try later.

    False when it refused what it was given, which trying again cannot change.
    """
    return isinstance(error, _UNAVAILABLE) or bool(getattr(error, "connection_invalidated", False))


# Page cache of each SQLite connection of the records, KiB.
PAGE_CACHE_KIB = 128


def make_engine(url: str) -> Engine:
    """An engine; SQLite gets WAL, a busy timeout and enforced foreign keys."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True, json_serializer=_strict_json)
    engine = create_engine(
        url, connect_args={"timeout": 30, "check_same_thread": False}, json_serializer=_strict_json
    )

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(conn, _record):  # type: ignore[no-untyped-def]
        cursor = conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        # 128 KiB of page cache per connection rather than SQLite's 2 MiB: the pool keeps several
        # connections open for as long as the service runs, and each would fill its own 2 MiB
        # with the same pages of the devices' rows, which the operating system caches anyway.
        # The readings' buffer and store, on the hot path, have caches of their own.
        cursor.execute(f"PRAGMA cache_size=-{PAGE_CACHE_KIB}")
        cursor.close()

    @event.listens_for(engine, "handle_error")
    def _drop_read_only(context: ExceptionContext) -> None:
        # SQLite opens a file it may not write read-only, silently, and such a connection stays
        # read-only after the file is writable again: treated as a lost connection, the pool
        # discards it and the next session opens the file afresh.
        if "readonly database" in str(context.original_exception):
            context.is_disconnect = True

    return engine


def revision(engine: Engine) -> str | None:
    """The one revision the database is at (Alembic's version table), or None: none, or several."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        found = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    return found[0] if len(found) == 1 else None


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (Alembic `upgrade head`), if it is not there yet."""
    if revision(engine) == HEAD:
        return
    # Imported only when there is something to migrate: Alembic (with Mako and Pygments) is
    # about 9 MB of memory that a database already at the head never needs.
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


class MigrationFailed(RuntimeError):
    """The migrations run apart did not bring the records to the newest revision."""


def migrate_apart(engine: Engine) -> None:
    """`migrate`, with Alembic run in a short-lived process of its own when there is anything to do.

    For long-running services: memory a process has used stays its own, and what Alembic takes
    (about 11 MB with its imports) would stay in the service for good after a first start.
    """
    if revision(engine) == HEAD:
        return
    if engine.url.get_backend_name() == "sqlite" and engine.url.database in (None, "", ":memory:"):
        migrate(engine)  # a database in this process's memory: no other process can reach it
        return
    url = engine.url.render_as_string(hide_password=False)
    # The URL goes on stdin, not the command line, where anyone on the machine could read its password.
    done = subprocess.run([sys.executable, "-m", "records.upgrade"], input=url, text=True, check=False)
    if done.returncode != 0 or revision(engine) != HEAD:
        raise MigrationFailed(f"migrating the records to {HEAD} failed (exit status {done.returncode})")


class Database:
    """Sessions on one engine."""

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        # SQLite has one writer at a time, and a writer that finds the file locked sleeps in
        # steps of up to 100 ms; taking turns on a lock in this process wakes the next at once.
        self._turns: threading.Lock | contextlib.nullcontext[None] = (
            threading.Lock() if self.engine.dialect.name == "sqlite" else contextlib.nullcontext()
        )

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session whose work is committed at the end of the block, or rolled back on error."""
        with self._turns, self._sessions() as s, s.begin():
            yield s

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reading only; whatever it did is rolled back."""
        # No writer's turn to wait for: SQLite's WAL lets readers read while one writes.
        with self._sessions() as s:
            yield s

    def close(self) -> None:
        """Dispose of the connection pool."""
        self.engine.dispose()
