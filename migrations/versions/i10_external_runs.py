"""runs.source: external runs, logged by a client (the Keras callback, MLflow) and never trained by the worker

Revision ID: i10_external_runs
Revises: i14_series_store
Create Date: 2026-11-30 11:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "i10_external_runs"
down_revision: str | None = "i14_series_store"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("source", sa.String(length=32), server_default="prunelab", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_column("source")
