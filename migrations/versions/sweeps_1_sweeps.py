"""sweeps and their points (each point names the run that stands for it)

Revision ID: sweeps_1_sweeps
Revises: liveops_workers_notify
Create Date: 2026-12-07 14:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "sweeps_1_sweeps"
down_revision: str | None = "liveops_workers_notify"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sweeps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("point_count", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("owner_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], name=op.f("fk_sweeps_owner_id_users"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sweeps")),
    )
    op.create_index(op.f("ix_sweeps_owner_id"), "sweeps", ["owner_id"], unique=False)
    op.create_table(
        "sweep_points",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sweep_id", sa.Integer(), nullable=False),
        sa.Column("index", sa.Integer(), nullable=False),
        sa.Column("variant", sa.String(length=40), nullable=True),
        sa.Column("values", sa.JSON(), nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_sweep_points_run_id_runs"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(
            ["sweep_id"], ["sweeps.id"], name=op.f("fk_sweep_points_sweep_id_sweeps"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sweep_points")),
        sa.UniqueConstraint("sweep_id", "index", name=op.f("uq_sweep_points_sweep_id")),
    )
    op.create_index(op.f("ix_sweep_points_run_id"), "sweep_points", ["run_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_sweep_points_run_id"), table_name="sweep_points")
    op.drop_table("sweep_points")
    op.drop_index(op.f("ix_sweeps_owner_id"), table_name="sweeps")
    op.drop_table("sweeps")
