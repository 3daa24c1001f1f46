"""`prunelab-client` is the client alone: built from clients/python, installed into a fresh venv outside the
repository, it imports `prunelab.Client`, runs the client verbs, and brings no server and no TensorFlow."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.stack import REPO, free_port
from tests.packaging.test_wheel import tree_copy

pytestmark = pytest.mark.integration

SERVER_ONLY = ("fastapi", "starlette", "sqlalchemy", "alembic", "celery", "kombu", "tensorflow", "backend", "worker")


@pytest.fixture(scope="module")
def client_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = tree_copy(tmp_path_factory.mktemp("source"))
    out = tmp_path_factory.mktemp("dist")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet", "-w", str(out), "."],
        cwd=source / "clients" / "python",
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    [wheel] = out.glob("prunelab_client-*.whl")
    return wheel


def test_the_client_wheel_holds_the_client_and_core_and_nothing_of_the_server(client_wheel: Path) -> None:
    names = set(zipfile.ZipFile(client_wheel).namelist())
    print(f"{client_wheel.name}: {client_wheel.stat().st_size:,} bytes, {len(names)} files")
    for required in (
        "prunelab/__init__.py",
        "prunelab/client.py",
        "prunelab/cli.py",
        "core/specs.py",
        "core/exports.py",
    ):
        assert required in names, required
    assert {name.split("/")[0] for name in names if ".dist-info/" not in name} == {"prunelab", "core"}
    metadata = zipfile.ZipFile(client_wheel).read(next(n for n in names if n.endswith("/METADATA"))).decode()
    requires = [
        line.split(":", 1)[1].strip().lower() for line in metadata.splitlines() if line.startswith("Requires-Dist:")
    ]
    assert not [r for r in requires if r.split(">")[0].split("[")[0].strip() in SERVER_ONLY], requires
    entry_points = (
        zipfile.ZipFile(client_wheel).read(next(n for n in names if n.endswith("/entry_points.txt"))).decode()
    )
    assert "prunelab = prunelab.cli:main" in entry_points


def test_one_version_for_both_distributions() -> None:
    import prunelab

    server = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert prunelab.__version__ == server


@pytest.fixture(scope="module")
def client_venv(client_wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    venv = tmp_path_factory.mktemp("client-venv")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(client_wheel)],
        capture_output=True,
        text=True,
    )
    assert pip.returncode == 0, pip.stdout[-3000:] + pip.stderr[-3000:]
    yield venv


def clean_env(tmp_path: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PRUNELAB_")}
    return env | {"PYTHONPATH": "", "HOME": str(tmp_path)}


def test_the_installed_client_imports_without_the_server_or_tensorflow(client_venv: Path, tmp_path: Path) -> None:
    probe = (
        "import importlib.util as u, prunelab, core.specs; "
        "print(prunelab.Client.__name__, prunelab.__file__); "
        f"print([m for m in {SERVER_ONLY!r} if u.find_spec(m)])"
    )
    result = subprocess.run(
        [str(client_venv / "bin" / "python"), "-c", probe], cwd=tmp_path, env=clean_env(tmp_path),
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    first, missing = result.stdout.splitlines()
    name, location = first.split()
    assert name == "Client" and Path(location).is_relative_to(client_venv), first
    assert missing == "[]", result.stdout


def test_the_installed_command_has_the_client_verbs_and_says_how_to_get_the_server(
    client_venv: Path, tmp_path: Path
) -> None:
    prunelab = str(client_venv / "bin" / "prunelab")
    env = clean_env(tmp_path)
    helped = subprocess.run([prunelab, "--help"], env=env, capture_output=True, text=True)
    assert helped.returncode == 0 and "submit" in helped.stdout and "download" in helped.stdout, helped.stderr
    server = subprocess.run([prunelab, "migrate"], env=env, capture_output=True, text=True)
    assert server.returncode == 2 and "pip install prunelab" in server.stderr, server.stderr
    refused = subprocess.run(
        [prunelab, "--url", f"http://127.0.0.1:{free_port()}", "runs", "ls"], env=env, capture_output=True, text=True
    )
    assert refused.returncode == 1, refused.stderr
    assert "cannot reach PruneLab" in refused.stderr and "Traceback" not in refused.stderr, refused.stderr
