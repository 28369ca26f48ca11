"""Alembic environment: migrations run on the connection the service hands over (records/db.py)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from records.models import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # `alembic` on the command line: FACILITY_DATABASE_URL or sqlalchemy.url
    import os

    url = os.environ.get("FACILITY_DATABASE_URL") or config.get_main_option("sqlalchemy.url")
    assert url, "set FACILITY_DATABASE_URL"
    with create_engine(url).connect() as conn:
        context.configure(connection=conn, target_metadata=Base.metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
else:
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
