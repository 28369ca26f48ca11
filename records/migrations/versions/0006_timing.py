"""ticket timing: the acknowledge clock's start, the resolve target, the overdue marks

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 12:45:00
"""

from collections.abc import Sequence
from datetime import timedelta

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WHEN = sa.DateTime(timezone=True)
# The resolve and response targets of each class in seconds, as ground/severity.py had them here:
# a migration keeps the values it was written with.
RESOLVE_S = {"routine": 72 * 3600, "major": 24 * 3600, "emergency": 4 * 3600}
RESPONSE_S = {"routine": 24 * 3600, "major": 30 * 60, "emergency": 5 * 60}


def upgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ack_from", WHEN, nullable=True))
        batch_op.add_column(sa.Column("resolve_due", WHEN, nullable=True))
        batch_op.add_column(sa.Column("response_overdue_at", WHEN, nullable=True))
        batch_op.add_column(sa.Column("resolve_overdue_at", WHEN, nullable=True))
    # Tickets of before: resolve due the class's resolve time after their response clock started.
    id_, due_at = sa.column("id", sa.Integer()), sa.column("response_due", WHEN)
    tickets = sa.table("tickets", id_, sa.column("class", sa.String()), due_at)
    due = sa.table("tickets", sa.column("id", sa.Integer()), sa.column("resolve_due", WHEN))
    conn = op.get_bind()
    for ticket_id, severity, response_due in conn.execute(sa.select(tickets)).all():
        extra = timedelta(seconds=RESOLVE_S[severity] - RESPONSE_S[severity])
        conn.execute(sa.update(due).where(due.c.id == ticket_id).values(resolve_due=response_due + extra))
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.alter_column("resolve_due", existing_type=WHEN, nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_column("resolve_overdue_at")
        batch_op.drop_column("response_overdue_at")
        batch_op.drop_column("resolve_due")
        batch_op.drop_column("ack_from")
