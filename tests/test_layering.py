"""The layering LAYERING.md writes down, checked: what each process loads and who imports whom."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import grimp

from harness.stack import REPO

WEB_AND_QUEUE = ("fastapi", "starlette", "sqlalchemy", "alembic", "celery", "kombu")
TENSORFLOW = ("tensorflow", "tf_keras", "keras", "tensorflow_model_optimization")


def loaded_modules_after(imports: str) -> set[str]:
    """Every module in sys.modules of a fresh interpreter after running `imports`."""
    probe = f"import sys, json; {imports}; print(json.dumps(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    return set(json.loads(result.stdout.strip().splitlines()[-1]))


def loaded_after(imports: str) -> set[str]:
    """Top-level packages, and PruneLab's parts (`prunelab.server`, ...), loaded after running `imports`."""
    modules = loaded_modules_after(imports)
    return {m.split(".")[0] for m in modules} | {
        ".".join(m.split(".")[:2]) for m in modules if m.startswith("prunelab.")
    }


SERVER_AND_WORKER = ("prunelab.server", "prunelab.worker")


def test_core_imports_only_pydantic_and_numpy() -> None:
    imports = (
        "import pkgutil, importlib, prunelab.core; "
        "[importlib.import_module(m.name) for m in pkgutil.walk_packages(prunelab.core.__path__, 'prunelab.core.')]"
    )
    loaded = loaded_after(imports)
    assert not loaded & {*WEB_AND_QUEUE, *TENSORFLOW, *SERVER_AND_WORKER, "httpx", "prunelab.client"}, sorted(loaded)
    assert {"prunelab.core", "pydantic", "numpy"} <= loaded


def test_api_process_does_not_import_tensorflow() -> None:
    loaded = loaded_after(
        "import prunelab.server.app, prunelab.server.cli, prunelab.server.queue.client, prunelab.worker.celery_app"
    )
    assert not loaded & set(TENSORFLOW), sorted(loaded & set(TENSORFLOW))


def test_worker_process_loads_no_web_framework() -> None:
    # The Celery app and its tasks reach sessions, stores and services; the FastAPI dependencies on top of them
    # live in prunelab.server.kit, which the worker never imports.
    modules = loaded_modules_after("import prunelab.worker.celery_app, prunelab.worker.tasks")
    # The probe did load the worker and the server code it runs on.
    assert {"celery", "sqlalchemy", "prunelab.worker.executor", "prunelab.server.db"} <= modules
    assert {"prunelab.server.artifacts.service", "prunelab.server.metrics.ingest"} <= modules
    web = sorted(m for m in modules if m.split(".")[0] in {"fastapi", "starlette"})
    assert not web, web


def test_the_client_and_its_command_load_no_server_and_no_tensorflow() -> None:
    # prunelab.keras (the Keras callback) needs TensorFlow by design; the client and the command never do.
    loaded = loaded_after("import prunelab, prunelab.client, prunelab.cli, prunelab.downloads")
    assert not loaded & {*WEB_AND_QUEUE, *TENSORFLOW, *SERVER_AND_WORKER}, sorted(loaded)
    assert {"prunelab", "httpx", "click", "tqdm"} <= loaded


def test_a_keras3_scripts_callback_loads_keras3_only() -> None:
    # PruneLabCallback(pruner=...) on JAX: Keras 3 and JAX, never TensorFlow, tf-keras or tfmot (nor the server).
    modules = loaded_modules_after(
        "import os; os.environ.pop('TF_USE_LEGACY_KERAS', None); os.environ['KERAS_BACKEND'] = 'jax'; "
        "import prunelab.keras; prunelab.keras.keras3_class()"
    )
    loaded = {m.split(".")[0] for m in modules} | {".".join(m.split(".")[:2]) for m in modules}
    assert {"keras", "jax", "prunelab.telemetry_keras3", "prunelab.telemetry_loop"} <= loaded
    assert not loaded & {"tensorflow", "tf_keras", "tensorflow_model_optimization", "prunelab.telemetry_callback"}
    assert not loaded & {*WEB_AND_QUEUE, *SERVER_AND_WORKER}, sorted(loaded & {*WEB_AND_QUEUE, *SERVER_AND_WORKER})


def test_the_keras_engine_child_loads_keras3_and_no_tf_keras_or_tfmot() -> None:
    # What a keras-engine run's child process imports to train on JAX: Keras 3 and JAX, no tf-keras, no tfmot, no web.
    modules = loaded_modules_after(
        "import os; os.environ.pop('TF_USE_LEGACY_KERAS', None); os.environ['KERAS_BACKEND'] = 'jax'; "
        "os.environ['PRUNELAB_KERAS3_CHILD'] = '1'; import prunelab.worker.keras3.child, prunelab.worker.keras3.train; "
        "assert 'TF_USE_LEGACY_KERAS' not in os.environ"
    )
    loaded = {m.split(".")[0] for m in modules} | {".".join(m.split(".")[:3]) for m in modules}
    assert {"keras", "jax", "prunelab.worker.keras3", "prunelab.prune"} <= loaded
    assert not loaded & {"tf_keras", "tensorflow_model_optimization", "prunelab.worker.training.tf"}
    assert not loaded & set(WEB_AND_QUEUE), sorted(loaded & set(WEB_AND_QUEUE))


def test_training_library_loads_no_web_database_or_queue_code() -> None:
    imports = (
        "import pkgutil, importlib, prunelab.worker.training as training; "
        "[importlib.import_module(m.name) for m in pkgutil.walk_packages(training.__path__, training.__name__ + '.')]"
    )
    loaded = loaded_after(imports)
    assert "tensorflow" in loaded  # the probe did load the library
    assert not loaded & set(WEB_AND_QUEUE), sorted(loaded & set(WEB_AND_QUEUE))


def allowed_backend_imports() -> set[str]:
    """The modules LAYERING.md lets the training library import from the server."""
    text = (REPO / "LAYERING.md").read_text()
    line = re.search(r"^.*`prunelab.worker.training` may import from `prunelab.server` only: (.*)$", text, re.M)
    assert line, "LAYERING.md must say what prunelab.worker.training may import from prunelab.server"
    return set(re.findall(r"`(prunelab\.server[\w.]*)`", line.group(1)))


def test_training_library_imports_from_backend_only_what_layering_allows() -> None:
    graph = grimp.build_graph("prunelab")
    imported = {
        (importer, imported)
        for importer in graph.find_descendants("prunelab.worker.training") | {"prunelab.worker.training"}
        for imported in graph.find_modules_directly_imported_by(importer)
        if imported.startswith("prunelab.server")
    }
    allowed = allowed_backend_imports()
    assert allowed, "the allowance parsed from LAYERING.md is empty"
    assert {target for _, target in imported} <= allowed, sorted(imported)
    # The allowed modules themselves reach nothing of the web process beyond each other.
    for module in allowed:
        reached = {m for m in graph.find_upstream_modules(module) if m.startswith("prunelab.server")}
        assert reached <= allowed | {"prunelab.server", "prunelab.server.uploads"}, (module, sorted(reached))


def test_import_contracts_hold() -> None:
    # The contracts in pyproject.toml (`make lint` runs them too): core is pure, backend never imports the worker
    # or TensorFlow, backend packages only import downwards, bench does not import tests.
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint_imports), "--no-cache"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


GENERIC_NAMES = ("core", "backend", "worker", "frontend", "migrations")


def test_no_code_imports_a_folder_by_its_generic_name() -> None:
    """The folders are reached as `prunelab.*` only: `import core` works in a checkout but not in an install."""
    listed = subprocess.run(["git", "ls-files", "*.py"], cwd=REPO, capture_output=True, text=True, check=True)
    pattern = re.compile(rf"^\s*(?:from|import)\s+({'|'.join(GENERIC_NAMES)})(?:\.|\s|$)", re.M)
    offenders = [
        f"{name}: {match.group(0).strip()}"
        for name in listed.stdout.split()
        for match in pattern.finditer((REPO / name).read_text())
    ]
    assert not offenders, offenders
