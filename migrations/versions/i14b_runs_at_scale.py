"""runs at scale: an index for the runs list's default order, and each run's schedule kind as a column

Revision ID: i14b_runs_at_scale
Revises: i10_external_runs
Create Date: 2026-11-30 11:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "i14b_runs_at_scale"
down_revision: str | None = "i10_external_runs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_runs_created_at_id", "runs", ["created_at", "id"])
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("schedule_kind", sa.String(length=32), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.execute("UPDATE runs SET schedule_kind = spec #>> '{schedule,kind}'")
    else:
        op.execute("UPDATE runs SET schedule_kind = json_extract(spec, '$.schedule.kind')")


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("schedule_kind")
    op.drop_index("ix_runs_created_at_id", table_name="runs")
