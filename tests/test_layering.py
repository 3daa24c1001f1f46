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


def loaded_after(imports: str) -> set[str]:
    """Top-level packages in sys.modules of a fresh interpreter after running `imports`."""
    probe = f"import sys, json; {imports}; print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    return set(json.loads(result.stdout.strip().splitlines()[-1]))


def test_core_imports_only_pydantic_and_numpy() -> None:
    imports = (
        "import pkgutil, importlib, core; "
        "[importlib.import_module(m.name) for m in pkgutil.walk_packages(core.__path__, 'core.')]"
    )
    loaded = loaded_after(imports)
    assert not loaded & {*WEB_AND_QUEUE, *TENSORFLOW, "backend", "worker"}, sorted(loaded)
    assert {"core", "pydantic", "numpy"} <= loaded


def test_api_process_does_not_import_tensorflow() -> None:
    loaded = loaded_after("import backend.app, backend.cli, backend.queue.client, worker.celery_app")
    assert not loaded & set(TENSORFLOW), sorted(loaded & set(TENSORFLOW))


def test_the_client_and_its_command_load_no_server_and_no_tensorflow() -> None:
    # prunelab.keras (the Keras callback) needs TensorFlow by design; the client and the command never do.
    loaded = loaded_after("import prunelab, prunelab.client, prunelab.cli, prunelab.downloads")
    assert not loaded & {*WEB_AND_QUEUE, *TENSORFLOW, "backend", "worker"}, sorted(loaded)
    assert {"prunelab", "httpx", "click", "tqdm"} <= loaded


def test_training_library_loads_no_web_database_or_queue_code() -> None:
    imports = (
        "import pkgutil, importlib, worker.training; "
        "[importlib.import_module(m.name) for m in pkgutil.walk_packages(worker.training.__path__, 'worker.training.')]"
    )
    loaded = loaded_after(imports)
    assert "tensorflow" in loaded  # the probe did load the library
    assert not loaded & set(WEB_AND_QUEUE), sorted(loaded & set(WEB_AND_QUEUE))


def allowed_backend_imports() -> set[str]:
    """The modules LAYERING.md lets the training library import from backend."""
    text = (REPO / "LAYERING.md").read_text()
    line = re.search(r"^.*`worker/training/` may import from `backend` only: (.*)$", text, re.M)
    assert line, "LAYERING.md must say what worker/training may import from backend"
    return set(re.findall(r"`(backend[\w.]*)`", line.group(1)))


def test_training_library_imports_from_backend_only_what_layering_allows() -> None:
    graph = grimp.build_graph("worker", "backend", "core")
    imported = {
        (importer, imported)
        for importer in graph.find_descendants("worker.training") | {"worker.training"}
        for imported in graph.find_modules_directly_imported_by(importer)
        if imported.split(".")[0] == "backend"
    }
    allowed = allowed_backend_imports()
    assert allowed, "the allowance parsed from LAYERING.md is empty"
    assert {target for _, target in imported} <= allowed, sorted(imported)
    # The allowed modules themselves reach nothing of the web process beyond each other.
    for module in allowed:
        reached = {m for m in graph.find_upstream_modules(module) if m.startswith("backend")}
        assert reached <= allowed | {"backend", "backend.uploads"}, (module, sorted(reached))


def test_import_contracts_hold() -> None:
    # The contracts in pyproject.toml (`make lint` runs them too): core is pure, backend never imports the worker
    # or TensorFlow, backend packages only import downwards, bench does not import tests.
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint_imports), "--no-cache"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout
