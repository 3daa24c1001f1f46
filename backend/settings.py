"""PruneLab's one settings object, read from `PRUNELAB_*` environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from urllib.parse import unquote, urlsplit

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
    artifact_url: str = Field(
        "",
        description="Where every artifact (models, uploads, checkpoints) is stored: `file:///absolute/path` or "
        "`s3://bucket/prefix`; default: `file://` + `home`/artifacts.",
    )
    artifact_dir: Path | None = Field(
        None, description="The artifact folder of a `file://` store (older setting; `artifact_url` wins)."
    )
    s3_endpoint_url: str = Field(
        "", description="S3-compatible endpoint (MinIO, moto); empty: AWS. Credentials: AWS_ACCESS_KEY_ID etc."
    )
    store_attempts: int = Field(4, ge=1, description="Tries of one artifact write or read before it fails.")
    store_backoff_s: float = Field(1.0, ge=0, description="Wait before the second try; doubled before each next.")
    store_timeout_s: float = Field(60, gt=0, description="Longest one request to the object store may take.")
    data_dir: Path | None = Field(
        None, description="Where datasets are read from and downloaded to; default: `home`/datasets."
    )
    host: str = Field("127.0.0.1", description="Address the API binds to.")
    port: int = Field(8000, description="Port the API listens on.")
    run_time_limit_s: int = Field(
        6 * 3600, ge=5, description="Hard time limit of one run, in seconds; the soft limit comes a little earlier."
    )
    worker_concurrency: int = Field(1, ge=1, description="Runs one worker trains at once.")
    worker_heartbeat_s: float = Field(
        10, gt=0, description="Seconds between a worker's presence heartbeats; it is shown gone after two missed."
    )
    heartbeat_timeout_s: float = Field(
        60, gt=0, description="A running run whose heartbeat is older than this is presumed dead and reaped."
    )
    reaper_interval_s: float = Field(
        10, ge=0, description="Seconds between the API's reaper passes (dead runs, lost queue entries); 0 disables."
    )
    external_run_timeout_s: float = Field(
        24 * 3600,
        gt=0,
        description="An external run nothing was heard from for this long (its script was killed) is marked failed.",
    )
    max_attempts: int = Field(2, ge=1, description="A dead run is requeued while it has had fewer attempts than this.")
    reconcile_after_s: float = Field(
        60, ge=0, description="A run queued this long in the database but missing from the broker is sent again."
    )
    api_token: str = Field(
        "", description="A service token for scripts; when set, every route but /api/health and static files needs it."
    )
    secret_key: str = Field(
        "", description="Signs session cookies; default: a random key kept in `home`/secret_key (mode 600)."
    )
    session_max_age_s: int = Field(7 * 24 * 3600, ge=60, description="How long a dashboard sign-in lasts.")
    allow_open_access: bool = Field(
        False,
        description="Serve without users on an address other than loopback (a container published on loopback only).",
    )
    cors_origins: str = Field("", description="Comma-separated origins allowed by CORS; CORS is off when empty.")
    cors_allow_credentials: bool = Field(False, description="Let CORS requests carry cookies (never with `*`).")
    max_upload_bytes: int = Field(
        200 * 1024 * 1024, gt=0, description="Largest request body accepted, refused with 413 before it is read."
    )

    max_sweep_runs: int = Field(
        1000, ge=1, description="Most runs one sweep may make; a larger sweep is refused with 422 saying how many."
    )
    max_points_bytes: int = Field(
        8 * 1024 * 1024, gt=0, description="Largest batch of metric points (POST /api/runs/{id}/points) accepted."
    )

    @model_validator(mode="after")
    def _fill_defaults(self) -> Settings:
        home = self.home.resolve()
        if not self.database_url:
            self.database_url = f"sqlite:///{home / 'prunelab.sqlite'}"
        if not self.broker_url:
            self.broker_url = f"sqla+sqlite:///{home / 'broker.sqlite'}"
        if not self.artifact_url:
            self.artifact_url = (self.artifact_dir or home / "artifacts").resolve().as_uri()
        self.artifact_dir = artifact_folder(self.artifact_url)
        if self.data_dir is None:
            self.data_dir = home / "datasets"
        if "*" in self.cors_origin_list and self.cors_allow_credentials:
            # Browsers refuse it, and a server that reflects any origin with credentials lets every site in.
            raise ValueError("cors_origins '*' cannot be combined with cors_allow_credentials")
        return self

    @property
    def cors_origin_list(self) -> list[str]:
        return [origin.strip() for origin in self.cors_origins.split(",") if origin.strip()]

    @property
    def run_soft_time_limit_s(self) -> int:
        """The task is asked to stop a minute before it is killed (a fifth of the limit for short limits)."""
        return self.run_time_limit_s - min(60, max(1, self.run_time_limit_s // 5))

    @property
    def broker_visibility_timeout_s(self) -> int:
        """Longer than any run may last, so Redis never redelivers a task still running."""
        return self.run_time_limit_s + 3600

    def ensure_dirs(self) -> None:
        for folder in (self.home, self.artifact_dir, self.data_dir):
            if folder is not None:  # an object store has no local folder
                folder.mkdir(parents=True, exist_ok=True)


def artifact_folder(url: str) -> Path | None:
    """The local folder of a `file://` artifact URL, None for `s3://`; a ValueError naming the setting otherwise."""
    parts = urlsplit(url)
    if parts.scheme == "file" and parts.netloc in ("", "localhost") and parts.path.startswith("/"):
        return Path(unquote(parts.path))
    if parts.scheme == "s3" and parts.netloc and not parts.query and not parts.fragment:
        return None
    raise ValueError(
        f"PRUNELAB_ARTIFACT_URL must be file:///absolute/folder or s3://bucket/optional/prefix, not {url!r}"
    )


@lru_cache
def get_settings() -> Settings:
    return Settings()
