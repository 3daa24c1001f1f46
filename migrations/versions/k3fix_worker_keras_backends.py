"""workers record the Keras backends their keras engine can run

Revision ID: k3fix_worker_keras_backends
Revises: perf24_metrics_without_fk
Create Date: 2026-12-07 21:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "k3fix_worker_keras_backends"
down_revision: str | None = "perf24_metrics_without_fk"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable: a row written by a worker of an earlier version records no backends (unknown, not none).
    with op.batch_alter_table("workers") as batch:
        batch.add_column(sa.Column("keras_backends", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("workers") as batch:
        batch.drop_column("keras_backends")
