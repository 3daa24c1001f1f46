"""Alembic environment: the schema's only author, on PostgreSQL and SQLite alike."""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context

from prunelab.server.db import engine_for
from prunelab.server.models import Base
from prunelab.server.settings import get_settings

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def run_migrations() -> None:
    url = config.attributes.get("database_url") or get_settings().database_url
    engine = engine_for(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


run_migrations()
