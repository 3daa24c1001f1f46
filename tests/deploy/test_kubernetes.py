"""deploy/kubernetes: what can be checked without a cluster.

Every manifest is a Kubernetes object valid against Kubernetes' own schema (kubernetes-validate, strict: no unknown
field), except KEDA's ScaledObject, a custom resource, checked against the fields KEDA's redis scaler documents.
Every environment variable the manifests give a container is one PruneLab reads, every command is a `prunelab` verb,
and the ScaledObject watches the list Celery keeps the queue in, on the broker the workers use.
"""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest
import yaml
from sqlalchemy.engine import make_url

from harness.stack import REPO
from prunelab import __version__
from prunelab.cli import SERVER_COMMANDS
from prunelab.server.settings import Settings

MANIFESTS = REPO / "deploy" / "kubernetes"
# Read by the S3 store (obstore, backend/artifacts/s3.py) besides PruneLab's own settings.
STORE_VARIABLES = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"}
KEDA_REDIS_FIELDS = {"address", "host", "port", "usernameFromEnv", "passwordFromEnv", "listName", "listLength",
                     "activationListLength", "enableTLS", "unsafeSsl", "databaseIndex", "addressFromEnv",
                     "hostFromEnv", "portFromEnv"}  # fmt: skip


def objects() -> list[tuple[str, dict[str, Any]]]:
    return [(path.name, document) for path in sorted(MANIFESTS.glob("*.yaml"))
            for document in yaml.safe_load_all(path.read_text()) if document is not None]  # fmt: skip


def by_kind(kind: str) -> list[tuple[str, dict[str, Any]]]:
    return [(name, document) for name, document in objects() if document["kind"] == kind]


def pod_specs() -> list[tuple[str, dict[str, Any]]]:
    return [(name, document["spec"]["template"]["spec"]) for name, document in objects()
            if document["kind"] in ("Deployment", "Job")]  # fmt: skip


def environment_of(container: dict[str, Any]) -> dict[str, str]:
    """Every variable a container gets: its `env` and the keys of the ConfigMaps and Secrets in its `envFrom`."""
    sources = {("configMapRef", document["metadata"]["name"]): document["data"] for _, document in by_kind("ConfigMap")}
    sources |= {
        ("secretRef", document["metadata"]["name"]): document["stringData"] for _, document in by_kind("Secret")
    }
    variables: dict[str, str] = {}
    for source in container.get("envFrom", []):
        ((kind, reference),) = source.items()
        variables |= sources[(kind, reference["name"])]  # a KeyError: a reference to nothing in deploy/
    variables |= {item["name"]: item["value"] for item in container.get("env", [])}
    return variables


def test_every_manifest_is_a_valid_kubernetes_object() -> None:
    kinds = [(name, document["kind"]) for name, document in objects()]
    assert {"Deployment", "Job", "Service", "Secret", "ConfigMap", "ScaledObject"} <= {kind for _, kind in kinds}
    for name, document in objects():
        assert document["metadata"]["name"], name
        if document["apiVersion"] == "keda.sh/v1alpha1":
            continue  # a custom resource: checked below
        kubernetes_validate.validate(document, kubernetes_validate.latest_version(), strict=True)


@pytest.mark.parametrize("file", ["worker-cpu.yaml", "worker-gpu.yaml"])
def test_the_worker_comes_in_cpu_and_gpu_variants_of_the_deployment_keda_scales(file: str) -> None:
    (deployment,) = [document for name, document in by_kind("Deployment") if name == file]
    (scaled,) = [document for _, document in by_kind("ScaledObject")]
    assert deployment["metadata"]["name"] == scaled["spec"]["scaleTargetRef"]["name"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    resources = container["resources"]
    gpus = resources["requests"].get("nvidia.com/gpu"), resources["limits"].get("nvidia.com/gpu")
    assert gpus == ((1, 1) if file == "worker-gpu.yaml" else (None, None))


def test_every_variable_is_one_prunelab_reads_and_every_command_a_prunelab_verb() -> None:
    commands = set()
    for name, pod in pod_specs():
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        for container in pod["containers"]:
            command = container["command"]
            assert command[0] == "prunelab" and command[1] in SERVER_COMMANDS, (name, command)
            commands.add(command[1])
            variables = environment_of(container)
            unknown = {key for key in variables if key not in STORE_VARIABLES
                       and key.removeprefix("PRUNELAB_").lower() not in Settings.model_fields}  # fmt: skip
            assert not unknown and all(key.startswith("PRUNELAB_") or key in STORE_VARIABLES for key in variables)
            fields = {key.removeprefix("PRUNELAB_").lower(): value for key, value in variables.items()
                      if key.startswith("PRUNELAB_")}  # fmt: skip
            Settings(**fields)  # and PruneLab accepts their values
    assert commands == {"api", "worker", "migrate"}


def test_the_secrets_are_templates_without_a_value() -> None:
    for name, secret in by_kind("Secret"):
        assert secret["stringData"] and all("CHANGE-ME" in value for value in secret["stringData"].values()), name


def test_keda_scales_workers_on_the_length_of_the_celery_queue_in_the_workers_broker() -> None:
    ((_, scaled),) = by_kind("ScaledObject")
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    (trigger,) = scaled["spec"]["triggers"]
    metadata = trigger["metadata"]
    assert trigger["type"] == "redis" and metadata.keys() <= KEDA_REDIS_FIELDS
    assert all(isinstance(value, str) for value in metadata.values())  # KEDA's metadata is strings
    (deployment,) = {document["metadata"]["name"]: document for _, document in by_kind("Deployment")
                     if document["metadata"]["name"] == scaled["spec"]["scaleTargetRef"]["name"]}.values()  # fmt: skip
    settings = Settings(**{key.removeprefix("PRUNELAB_").lower(): value for key, value in
                           environment_of(deployment["spec"]["template"]["spec"]["containers"][0]).items()
                           if key.startswith("PRUNELAB_")})  # fmt: skip
    broker = make_url(settings.broker_url)
    assert metadata["listName"] == settings.queue  # Celery's Redis transport: one list per queue, named after it
    assert metadata["address"] == f"{broker.host}:{broker.port}"
    assert metadata["databaseIndex"] == (broker.database or "0")
    assert int(metadata["listLength"]) >= 1 and scaled["spec"]["minReplicaCount"] >= 1


def test_the_images_are_the_dockerfiles_targets() -> None:
    targets = set(
        line.split()[-1] for line in (REPO / "Dockerfile").read_text().splitlines() if line.startswith("FROM ")
    )
    for name, pod in pod_specs():
        for container in pod["containers"]:
            image = container["image"].split("/")[-1].split(":")[0].removeprefix("prunelab-")
            assert image in targets, (name, image)
            assert container["image"].endswith(f":{__version__}"), name  # pinned to the release it deploys
