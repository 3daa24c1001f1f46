"""MLflow runs in search order: an index on (experiment_id, start_time_ms, run_id) in place of experiment_id's

Revision ID: searchfast_mlflow_runs_order
Revises: sweeps_1_sweeps
Create Date: 2026-12-07 15:20:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "searchfast_mlflow_runs_order"
down_revision: str | None = "sweeps_1_sweeps"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # search_runs' default order (newest start first, then id) within the experiments asked for: the first page
    # is the index's first rows instead of a sort of every run. It also serves lookups by experiment alone.
    op.create_index(
        "ix_mlflow_runs_experiment_id_start_time_ms_run_id", "mlflow_runs", ["experiment_id", "start_time_ms", "run_id"]
    )
    op.drop_index("ix_mlflow_runs_experiment_id", table_name="mlflow_runs")


def downgrade() -> None:
    op.create_index("ix_mlflow_runs_experiment_id", "mlflow_runs", ["experiment_id"])
    op.drop_index("ix_mlflow_runs_experiment_id_start_time_ms_run_id", table_name="mlflow_runs")
