"""The wheel is PruneLab: built from the tree, installed into a fresh venv outside the repository, it migrates,
serves the dashboard, Plotly and the API, and needs no TensorFlow for that."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from harness.stack import REPO, free_port, healthy, wait_until

pytestmark = pytest.mark.integration


def tree_copy(target: Path) -> Path:
    """The working tree's files as git sees them (tracked and untracked-not-ignored): what a clone would build."""
    listed = (
        subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=REPO,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = tree_copy(tmp_path_factory.mktemp("source"))
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet", "-w", str(out), "."],
        cwd=source,
        check=True,
        capture_output=True,
    )
    [built] = out.glob("prunelab-*.whl")
    return built


def test_the_wheel_holds_the_dashboard_migrations_and_alembic_configuration(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    print(f"{wheel.name}: {wheel.stat().st_size:,} bytes, {len(names)} files")
    for required in (
        "frontend/index.html",
        "frontend/run.html",
        "frontend/compare.html",
        "frontend/new.html",
        "frontend/app.css",
        "frontend/js/common.js",
        "migrations/alembic.ini",
        "migrations/env.py",
        "migrations/script.py.mako",
        "core/specs.py",
        "backend/app.py",
        "worker/training/train.py",
        "prunelab/client.py",  # the client ships with the server: one `prunelab` command has both verb sets
        "prunelab/cli.py",
    ):
        assert required in names, required
    versions = sorted(name for name in names if name.startswith("migrations/versions/") and name.endswith(".py"))
    assert len(versions) == len(list((REPO / "migrations" / "versions").glob("*.py")))
    assert not [name for name in names if name.split("/")[0] in ("tests", "bench", "harness", "docs", "clients")]
    entry_points = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("/entry_points.txt"))).decode()
    assert "prunelab = prunelab.cli:main" in entry_points


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh venv outside the repository with the wheel (no extras) and its dependencies from the index."""
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(wheel)], capture_output=True, text=True
    )
    assert pip.returncode == 0, pip.stdout[-3000:] + pip.stderr[-3000:]
    yield venv


def test_the_api_installs_without_tensorflow(installed: Path) -> None:
    probe = (
        "import importlib.util as u; "
        "print([m for m in ('tensorflow', 'tf_keras', 'tensorflow_model_optimization') if u.find_spec(m)])"
    )
    result = subprocess.run([str(installed / "bin" / "python"), "-c", probe], capture_output=True, text=True)
    assert result.stdout.strip() == "[]", result.stdout + result.stderr
    worker = subprocess.run([str(installed / "bin" / "prunelab"), "worker"], capture_output=True, text=True)
    assert worker.returncode == 2 and "pip install 'prunelab[worker]'" in worker.stderr


def test_the_installed_wheel_migrates_and_serves_from_outside_the_repository(installed: Path, tmp_path: Path) -> None:
    home, port = tmp_path / "home", free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("PRUNELAB_")}
    env |= {"PRUNELAB_HOME": str(home), "PRUNELAB_PORT": str(port), "PYTHONPATH": ""}
    prunelab = str(installed / "bin" / "prunelab")
    migrated = subprocess.run([prunelab, "migrate"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert migrated.returncode == 0, migrated.stderr
    assert (home / "prunelab.sqlite").is_file()
    api = subprocess.Popen([prunelab, "api"], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: healthy(base), timeout=60, what="the installed API")
        index = httpx.get(f"{base}/")
        assert index.status_code == 200 and "<html" in index.text.lower()
        plotly = httpx.get(f"{base}/vendor/plotly.min.js")
        assert plotly.status_code == 200 and len(plotly.content) > 1_000_000
        assert httpx.get(f"{base}/js/common.js").status_code == 200
        assert httpx.get(f"{base}/api/health").json()["status"] == "ok"
    finally:
        api.terminate()
        api.wait(timeout=30)
    # What answered came from the venv, not from this checkout.
    where = "import backend, frontend, migrations; print(backend.__file__, frontend.__file__, migrations.__file__)"
    located = subprocess.run(
        [str(installed / "bin" / "python"), "-c", where], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert located.returncode == 0, located.stderr
    assert all(Path(path).is_relative_to(installed) for path in located.stdout.split()), located.stdout
