"""docker-compose.yml and the Dockerfile: valid for Debian's docker-compose, pinned, healthy, secrets from .env.

The stack itself is run in tests/integration/test_compose_smoke.py (each service's command, as local processes).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.compose import ENV_EXAMPLE, FILLED_ENV, compose_config, resolved_services, write_env_file
from harness.stack import REPO
from prunelab.server.settings import Settings

PRUNELAB_SERVICES = ("migrate", "api", "worker")


def test_the_compose_file_validates_and_keeps_every_artifact_in_a_bucket_its_store_creates(tmp_path: Path) -> None:
    services = resolved_services(tmp_path)
    assert {"postgres", "redis", "seaweedfs", "migrate", "api", "worker"} == services.keys()
    assert not any("minio" in service.get("image", "") for service in services.values())  # deleted from Docker Hub
    for name in PRUNELAB_SERVICES:
        service = services[name]
        assert "volumes" not in service, name  # nothing shared: a worker can be on another machine
        environment = service["environment"]
        fields = {key.removeprefix("PRUNELAB_").lower(): value for key, value in environment.items()
                  if key.startswith("PRUNELAB_")}  # fmt: skip
        assert fields.keys() <= Settings.model_fields.keys(), name  # every variable is one PruneLab reads
        settings = Settings(**fields)
        assert settings.artifact_dir is None and settings.artifact_url == "s3://prunelab/artifacts", name
        assert environment["PRUNELAB_S3_ENDPOINT_URL"] == "http://seaweedfs:8333"
        assert environment["AWS_ACCESS_KEY_ID"] == FILLED_ENV["STORE_ACCESS_KEY_ID"]
        assert environment["AWS_SECRET_ACCESS_KEY"] == FILLED_ENV["STORE_SECRET_ACCESS_KEY"]
        assert FILLED_ENV["POSTGRES_PASSWORD"] in environment["PRUNELAB_DATABASE_URL"]
    store = services["seaweedfs"]
    assert store["environment"]["S3_BUCKET"] == "prunelab"  # created at start by the server itself
    assert store["environment"]["AWS_SECRET_ACCESS_KEY"] == FILLED_ENV["STORE_SECRET_ACCESS_KEY"]
    assert "/buckets/prunelab/" in " ".join(store["healthcheck"]["test"])  # healthy once the bucket exists
    assert services["migrate"]["depends_on"]["seaweedfs"]["condition"] == "service_healthy"
    assert services["api"]["environment"]["PRUNELAB_SECRET_KEY"] == FILLED_ENV["PRUNELAB_SECRET_KEY"]
    for name, service in services.items():
        if "image" in service and "build" not in service:  # pinned: a version, never a moving tag
            assert re.fullmatch(r"[\w./-]+:\d+(\.\d+)+", service["image"]), (name, service["image"])
    for name in ("api", "worker"):
        assert services[name]["restart"] == "unless-stopped" and services[name]["healthcheck"]["test"], name
    assert services["api"]["build"]["target"] == "api" and services["worker"]["build"]["target"] == "worker"
    assert services["migrate"]["build"]["target"] == "api"  # the light image migrates


@pytest.mark.parametrize("missing", sorted(FILLED_ENV))
def test_the_stack_refuses_to_start_without_a_secret_and_says_what_to_set(missing: str, tmp_path: Path) -> None:
    values = {**FILLED_ENV, missing: ""}
    refused = compose_config(write_env_file(tmp_path, values))
    assert refused.returncode != 0
    assert f"set {missing} in .env" in refused.stderr, refused.stderr


def test_env_example_lists_every_secret_and_holds_none(tmp_path: Path) -> None:
    example = dict(
        line.split("=", 1) for line in ENV_EXAMPLE.read_text().splitlines() if "=" in line and line[0] != "#"
    )
    assert example.keys() == FILLED_ENV.keys()
    assert all(not example[key] for key in ("PRUNELAB_SECRET_KEY", "POSTGRES_PASSWORD", "STORE_SECRET_ACCESS_KEY"))
    as_shipped = compose_config(ENV_EXAMPLE)  # copied unchanged to .env: refused, naming what to set
    assert as_shipped.returncode != 0 and "in .env" in as_shipped.stderr
    assert ".env" in (REPO / ".gitignore").read_text().splitlines()  # never committed
    assert ".env" in (REPO / ".dockerignore").read_text().splitlines()  # nor copied into an image's build


def test_the_dockerfile_builds_an_api_image_without_tensorflow_and_a_worker_image_both_unprivileged() -> None:
    text = (REPO / "Dockerfile").read_text()
    names = re.findall(r"^FROM \S+ AS ([\w-]+)$", text, re.M)
    stages = dict(zip(names, re.split(r"^FROM .*$", text, flags=re.M)[1:], strict=True))
    assert {"api", "worker"} <= stages.keys()
    extras = {name: re.findall(r"\.whl\)\[([\w,]+)\]", stages[name]) for name in ("api", "worker")}
    # The worker trains both engines: tfmot on tf-keras ([worker]) and PruneLab's own on Keras 3 ([keras3]).
    assert extras == {"api": ["server"], "worker": ["worker,keras3"]}
    assert "useradd" in stages["base"]
    for name in ("api", "worker"):
        assert re.search(r"^USER prunelab$", stages[name], re.M), name
        assert re.search(r"^HEALTHCHECK .+CMD ", stages[name], re.M), name
        assert "FROM base AS " + name in text
