"""docker-compose.yml for several hosts: MinIO holds every artifact, the API and workers share no volume."""

from __future__ import annotations

import re

import yaml

from harness.stack import REPO
from prunelab.server.settings import Settings


def test_compose_keeps_artifacts_in_a_minio_bucket_created_at_start_and_shares_no_volume() -> None:
    services = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]
    assert {"postgres", "redis", "minio", "minio-bucket", "migrate", "api", "worker"} <= services.keys()
    for name in ("api", "worker", "migrate"):
        service = services[name]
        assert "volumes" not in service, name  # nothing shared: a worker can be on another machine
        environment = service["environment"]
        settings = Settings(**{key.removeprefix("PRUNELAB_").lower(): value for key, value in environment.items()
                               if key.startswith("PRUNELAB_")})  # fmt: skip
        assert settings.artifact_dir is None and settings.artifact_url == "s3://prunelab/artifacts", name
        assert environment["PRUNELAB_S3_ENDPOINT_URL"] == "http://minio:9000"
        assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= environment.keys()
    bucket_command = " ".join(services["minio-bucket"]["command"])
    assert re.search(r"mc mb --ignore-existing store/prunelab\b", bucket_command)
    assert services["migrate"]["depends_on"]["minio-bucket"]["condition"] == "service_completed_successfully"
