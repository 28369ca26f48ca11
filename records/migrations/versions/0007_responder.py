"""responder: a checkpoint's building and floor; verify stops added to rounds in progress

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 12:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("patrol_checkpoints") as batch_op:
        batch_op.add_column(sa.Column("building", sa.String(100), nullable=True))
        batch_op.add_column(sa.Column("floor", sa.String(50), nullable=True))
    op.create_table(
        "patrol_verify_stops",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("round_id", sa.Integer(), sa.ForeignKey("patrol_rounds.id"), nullable=False),
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("checkpoint_id", sa.String(64), nullable=False),
        sa.Column("ticket_id", sa.Integer(), sa.ForeignKey("tickets.id"), nullable=False),
        sa.Column("device_id", sa.String(64), nullable=True),
        sa.Column("added_at", WHEN, nullable=False),
        sa.Column("scanned_at", WHEN, nullable=True),
        sa.Column("scanned_by", sa.String(100), nullable=True),
        sa.Column("finding", sa.Text(), nullable=True),
        sa.Column("finding_scan_id", sa.Integer(), nullable=True),
    )
    op.create_index("patrol_verify_stops_once", "patrol_verify_stops", ["round_id", "ticket_id"], unique=True)
    op.create_index("patrol_verify_stops_site_checkpoint", "patrol_verify_stops", ["site", "checkpoint_id"])
    op.create_index("ix_patrol_verify_stops_ticket_id", "patrol_verify_stops", ["ticket_id"])


def downgrade() -> None:
    op.drop_table("patrol_verify_stops")
    with op.batch_alter_table("patrol_checkpoints") as batch_op:
        batch_op.drop_column("floor")
        batch_op.drop_column("building")
