"""PruneLab's one settings object, read from `PRUNELAB_*` environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PRUNELAB_", extra="ignore")

    home: Path = Field(Path("data"), description="Folder for the embedded database, broker and artifacts.")
    database_url: str = Field("", description="SQLAlchemy URL; default: SQLite in `home`.")
    broker_url: str = Field(
        "", description="Celery broker URL; default: kombu's SQLAlchemy transport on SQLite in `home`."
    )
    queue: str = Field("prunelab", description="Celery queue that runs are sent to.")
    artifact_dir: Path | None = Field(None, description="Where stripped models are stored; default: `home`/artifacts.")
    data_dir: Path | None = Field(
        None, description="Where datasets are read from and downloaded to; default: `home`/datasets."
    )
    host: str = Field("127.0.0.1", description="Address the API binds to.")
    port: int = Field(8000, description="Port the API listens on.")
    run_time_limit_s: int = Field(6 * 3600, gt=60, description="Hard time limit of one run, in seconds.")
    worker_concurrency: int = Field(1, ge=1, description="Runs one worker trains at once.")

    @model_validator(mode="after")
    def _fill_defaults(self) -> Settings:
        home = self.home.resolve()
        if not self.database_url:
            self.database_url = f"sqlite:///{home / 'prunelab.sqlite'}"
        if not self.broker_url:
            self.broker_url = f"sqla+sqlite:///{home / 'broker.sqlite'}"
        if self.artifact_dir is None:
            self.artifact_dir = home / "artifacts"
        if self.data_dir is None:
            self.data_dir = home / "datasets"
        return self

    @property
    def run_soft_time_limit_s(self) -> int:
        """The task is asked to stop a minute before it is killed."""
        return self.run_time_limit_s - 60

    @property
    def broker_visibility_timeout_s(self) -> int:
        """Longer than any run may last, so Redis never redelivers a task still running."""
        return self.run_time_limit_s + 3600

    def ensure_dirs(self) -> None:
        for folder in (self.home, self.artifact_dir, self.data_dir):
            assert folder is not None
            folder.mkdir(parents=True, exist_ok=True)


@lru_cache
def get_settings() -> Settings:
    return Settings()
