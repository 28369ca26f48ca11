"""outages: the gateway a device reports through; alarms found by their ticket

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 12:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("devices", sa.Column("gateway", sa.String(64), nullable=True))
    op.create_index("alarms_ticket_active", "alarms", ["ticket_id", "active"])


def downgrade() -> None:
    op.drop_index("alarms_ticket_active", "alarms")
    op.drop_column("devices", "gateway")
