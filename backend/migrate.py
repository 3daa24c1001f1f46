"""Apply Alembic migrations from code (the CLI, `make run` and the tests use this).

The migrations and their alembic.ini are the `migrations` package, found through importlib.resources, so an
installed wheel migrates exactly as a checkout does.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from alembic import command
from alembic.config import Config


def migrations_dir() -> Path:
    return Path(str(resources.files("prunelab.migrations")))


def alembic_config(database_url: str | None = None) -> Config:
    config = Config(str(migrations_dir() / "alembic.ini"))
    config.set_main_option("script_location", str(migrations_dir()))
    config.attributes["configure_logger"] = False
    if database_url:
        config.attributes["database_url"] = database_url
    return config


def upgrade_to_head(database_url: str | None = None) -> None:
    command.upgrade(alembic_config(database_url), "head")
