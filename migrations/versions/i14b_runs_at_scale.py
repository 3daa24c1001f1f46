"""runs at scale: an index for the runs list's default order (newest first, then id)

Revision ID: i14b_runs_at_scale
Revises: i14_series_store
Create Date: 2026-11-30 11:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "i14b_runs_at_scale"
down_revision: str | None = "i14_series_store"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_runs_created_at_id", "runs", ["created_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_runs_created_at_id", table_name="runs")
