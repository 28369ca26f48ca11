"""maintenance: contractors, plans, use since the last job, work orders, windows; held alarms

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 09:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "contractors",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("licence_number", sa.String(100), nullable=False),
        sa.Column("licence_expires", sa.Date(), nullable=False),
        sa.Column("equipment_types", sa.JSON(), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("expiry_ticket_for", sa.Date(), nullable=True),
    )
    op.create_table(
        "maintenance_plans",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("device_ids", sa.JSON(), nullable=False),
        sa.Column("device_type", sa.String(64), nullable=True),
        sa.Column("building", sa.String(100), nullable=True),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.Column("every", sa.String(16), nullable=True),
        sa.Column("first_due", WHEN, nullable=True),
        sa.Column("lead_days", sa.Integer(), nullable=False),
        sa.Column("counter_metric", sa.String(64), nullable=True),
        sa.Column("counter_every", sa.Double(), nullable=True),
        sa.Column("running_metric", sa.String(64), nullable=True),
        sa.Column("running_every_h", sa.Double(), nullable=True),
        sa.Column("responsible", sa.String(100), nullable=True),
        sa.Column("contractor_id", sa.String(64), sa.ForeignKey("contractors.id"), nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
    )
    op.create_index("ix_maintenance_plans_site", "maintenance_plans", ["site"])
    op.create_table(
        "maintenance_use",
        sa.Column("plan_id", sa.Integer(), sa.ForeignKey("maintenance_plans.id"), primary_key=True),
        sa.Column("device_id", sa.String(64), primary_key=True),
        sa.Column("counter_base", sa.Double(), nullable=True),
        sa.Column("running_s", sa.Double(), nullable=False),
        sa.Column("last_ts", WHEN, nullable=True),
        sa.Column("last_running", sa.Boolean(), nullable=True),
    )
    op.create_table(
        "work_orders",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("ticket_id", sa.Integer(), sa.ForeignKey("tickets.id"), nullable=False, unique=True),
        sa.Column("plan_id", sa.Integer(), sa.ForeignKey("maintenance_plans.id"), nullable=False),
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("device_id", sa.String(64), nullable=False),
        sa.Column("device_type", sa.String(64), nullable=True),
        sa.Column("due_at", WHEN, nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("checklist", sa.JSON(), nullable=False),
        sa.Column("done_at", WHEN, nullable=True),
        sa.Column("done_by", sa.String(100), nullable=True),
    )
    op.create_index("ix_work_orders_plan_id", "work_orders", ["plan_id"])
    op.create_index("ix_work_orders_site", "work_orders", ["site"])
    op.create_index("work_orders_once", "work_orders", ["plan_id", "device_id", "due_at"], unique=True)
    op.create_table(
        "maintenance_windows",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("device_ids", sa.JSON(), nullable=False),
        sa.Column("building", sa.String(100), nullable=True),
        sa.Column("start", WHEN, nullable=False),
        sa.Column("end", WHEN, nullable=False),
        sa.Column("reason", sa.String(300), nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("work_order_id", sa.Integer(), sa.ForeignKey("work_orders.id"), nullable=True),
        sa.Column("closed_at", WHEN, nullable=True),
    )
    op.create_index("ix_maintenance_windows_site", "maintenance_windows", ["site"])
    op.create_index("ix_maintenance_windows_end", "maintenance_windows", ["end"])
    with op.batch_alter_table("alarms", schema=None) as batch_op:
        batch_op.add_column(sa.Column("held", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("alarms", schema=None) as batch_op:
        batch_op.drop_column("held")
    op.drop_table("maintenance_windows")
    op.drop_table("work_orders")
    op.drop_table("maintenance_use")
    op.drop_table("maintenance_plans")
    op.drop_table("contractors")
