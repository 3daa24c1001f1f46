"""MLflow-compatible API: experiments, the MLflow side of runs, run params and key/value tags

Revision ID: i10_mlflow
Revises: i14b_runs_at_scale
Create Date: 2026-11-30 11:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "i10_mlflow"
down_revision: str | None = "i14b_runs_at_scale"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "mlflow_experiments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=500), nullable=False),
        sa.Column("artifact_location", sa.String(length=1000), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mlflow_experiments")),
        sa.UniqueConstraint("name", name=op.f("uq_mlflow_experiments_name")),
    )
    op.create_table(
        "mlflow_runs",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.String(length=250), nullable=False),
        sa.Column("start_time_ms", sa.BigInteger(), nullable=False),
        sa.Column("end_time_ms", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["experiment_id"], ["mlflow_experiments.id"], name=op.f("fk_mlflow_runs_experiment_id_mlflow_experiments")
        ),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_mlflow_runs_run_id_runs"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_mlflow_runs")),
    )
    with op.batch_alter_table("mlflow_runs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_mlflow_runs_experiment_id"), ["experiment_id"], unique=False)
    for table in ("run_params", "run_tag_values"):
        op.create_table(
            table,
            sa.Column("run_id", sa.Integer(), nullable=False),
            sa.Column("key", sa.String(length=250), nullable=False),
            sa.Column("value", sa.Text(), nullable=False),
            sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f(f"fk_{table}_run_id_runs"), ondelete="CASCADE"),
            sa.PrimaryKeyConstraint("run_id", "key", name=op.f(f"pk_{table}")),
        )


def downgrade() -> None:
    op.drop_table("run_tag_values")
    op.drop_table("run_params")
    with op.batch_alter_table("mlflow_runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mlflow_runs_experiment_id"))
    op.drop_table("mlflow_runs")
    op.drop_table("mlflow_experiments")
