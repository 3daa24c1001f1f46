"""workers you can see, and live pages told of changes: a workers table; on PostgreSQL, NOTIFY triggers

Revision ID: liveops_workers_notify
Revises: i10_mlflow
Create Date: 2026-12-07 14:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "liveops_workers_notify"
down_revision: str | None = "i10_mlflow"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Tables whose rows name a run that a live page shows: its status, its latest points, its files.
NOTIFYING_TABLES = {"runs": "id", "latest_metrics": "run_id", "artifacts": "run_id"}
CHANNEL = "prunelab_runs"


def upgrade() -> None:
    op.create_table(
        "workers",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("host", sa.String(length=200), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("queues", sa.JSON(), nullable=False),
        sa.Column("concurrency", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_workers")),
    )
    op.create_index(op.f("ix_workers_heartbeat_at"), "workers", ["heartbeat_at"])
    if op.get_bind().dialect.name != "postgresql":
        return
    # NOTIFY is delivered at commit, once per distinct payload per transaction: a flush of many points
    # tells listeners once, and a rolled-back write never.
    for table, column in NOTIFYING_TABLES.items():
        row = "OLD" if table == "runs" else "NEW"
        op.execute(
            f"""
            CREATE OR REPLACE FUNCTION prunelab_notify_{table}() RETURNS trigger AS $$
            BEGIN
                IF TG_OP = 'DELETE' THEN
                    PERFORM pg_notify('{CHANNEL}', OLD.{column}::text);
                    RETURN OLD;
                END IF;
                PERFORM pg_notify('{CHANNEL}', NEW.{column}::text);
                RETURN NEW;
            END;
            $$ LANGUAGE plpgsql
            """
        )
        events = "INSERT OR UPDATE OR DELETE" if row == "OLD" else "INSERT OR UPDATE"
        op.execute(
            f"CREATE TRIGGER prunelab_notify_{table} AFTER {events} ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION prunelab_notify_{table}()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in NOTIFYING_TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS prunelab_notify_{table} ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS prunelab_notify_{table}()")
    op.drop_index(op.f("ix_workers_heartbeat_at"), table_name="workers")
    op.drop_table("workers")
