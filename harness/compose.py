"""docker-compose.yml as Debian's `docker-compose` resolves it: the tests validate it and run its services' commands."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from harness.stack import REPO

COMPOSE_FILE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"
# What an operator writes into .env (every secret .env.example leaves empty, filled).
FILLED_ENV = {
    "PRUNELAB_SECRET_KEY": "test-secret-key-0123456789",
    "POSTGRES_PASSWORD": "test-postgres-password",
    "STORE_ACCESS_KEY_ID": "prunelab",
    "STORE_SECRET_ACCESS_KEY": "test-store-secret",
}


def write_env_file(folder: Path, values: dict[str, str]) -> Path:
    path = folder / "compose.env"
    path.write_text("".join(f"{key}={value}\n" for key, value in values.items()))
    return path


def compose_config(env_file: Path) -> subprocess.CompletedProcess[str]:
    """`docker-compose config` with `env_file` as .env, in an environment holding nothing else that it could read."""
    return subprocess.run(
        ["docker-compose", "--env-file", str(env_file), "--file", str(COMPOSE_FILE), "config"],
        env={"PATH": "/usr/local/bin:/usr/bin:/bin"},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def resolved_services(folder: Path, values: dict[str, str] = FILLED_ENV) -> dict[str, Any]:
    """The services of docker-compose.yml, every `${...}` replaced as `docker compose up` would."""
    resolved = compose_config(write_env_file(folder, values))
    assert resolved.returncode == 0, resolved.stderr
    return yaml.safe_load(resolved.stdout)["services"]
