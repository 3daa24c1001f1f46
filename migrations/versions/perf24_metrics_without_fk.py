"""Hot metric rows without the foreign key to runs: its per-row check was half of a batch insert on PostgreSQL

Revision ID: perf24_metrics_without_fk
Revises: searchfast_mlflow_runs_order
Create Date: 2026-12-07 21:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "perf24_metrics_without_fk"
down_revision: str | None = "searchfast_mlflow_runs_order"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The integrity the key gave is kept by the code: the one writer (backend/metrics/ingest.py) locks the runs of a
    # batch once (FOR KEY SHARE on PostgreSQL) and refuses a missing run; deleting a run deletes its rows explicitly.
    with op.batch_alter_table("metrics", schema=None) as batch_op:
        batch_op.drop_constraint("fk_metrics_run_id_runs", type_="foreignkey")


def downgrade() -> None:
    # Rows of runs deleted meanwhile would violate the key: they go first.
    op.execute("DELETE FROM metrics WHERE run_id NOT IN (SELECT id FROM runs)")
    with op.batch_alter_table("metrics", schema=None) as batch_op:
        batch_op.create_foreign_key("fk_metrics_run_id_runs", "runs", ["run_id"], ["id"], ondelete="CASCADE")
