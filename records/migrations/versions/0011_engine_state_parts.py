"""engine_state_parts: an engine's snapshot in parts of up to a thousand devices

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 22:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "engine_state_parts",
        sa.Column("state_id", sa.Integer(), nullable=False),
        sa.Column("part", sa.Integer(), nullable=False),
        sa.Column("devices", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("state_id", "part"),
    )


def downgrade() -> None:
    op.drop_table("engine_state_parts")
