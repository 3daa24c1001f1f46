"""metric series store: compacted chunks with a min/max pyramid

Revision ID: i14_series_store
Revises: i13_users_tokens
Create Date: 2026-11-26 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "i14_series_store"
down_revision: str | None = "i13_users_tokens"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "metric_series",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("point_count", sa.BigInteger(), nullable=False),
        sa.Column("first_step", sa.BigInteger(), nullable=False),
        sa.Column("last_step", sa.BigInteger(), nullable=False),
        sa.Column("base_width", sa.BigInteger(), nullable=False),
        sa.Column("level_factor", sa.Integer(), nullable=False),
        sa.Column("level_count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_metric_series_run_id_runs"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("run_id", "key", name=op.f("pk_metric_series")),
    )
    op.create_table(
        "metric_chunks",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("first_step", sa.BigInteger(), nullable=False),
        sa.Column("last_step", sa.BigInteger(), nullable=False),
        sa.Column("point_count", sa.Integer(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_metric_chunks_run_id_runs"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("run_id", "key", "level", "first_step", name=op.f("pk_metric_chunks")),
    )
    if op.get_bind().dialect.name == "postgresql":
        # The payload is zstd already: PostgreSQL's own TOAST compression would only spend time on it.
        op.execute("ALTER TABLE metric_chunks ALTER COLUMN payload SET STORAGE EXTERNAL")
    # Runs that finished before this revision keep their rows in `metrics`; the reaper's compaction pass
    # (or `prunelab compact`) moves them into chunks, one series per transaction.


def downgrade() -> None:
    op.drop_table("metric_chunks")
    op.drop_table("metric_series")
