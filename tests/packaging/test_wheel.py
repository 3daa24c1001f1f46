"""The distribution as a user gets it: `python -m build` from a clean tree gives an sdist and a wheel whose only
top-level import name is `prunelab`, and README's three install lines, run in fresh virtualenvs outside the
repository, give what each role needs and nothing more."""

from __future__ import annotations

import email
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

import prunelab
from harness.stack import REPO, free_port, healthy, wait_for_run, wait_until

pytestmark = pytest.mark.integration

SERVER_LIBRARIES = ("fastapi", "starlette", "sqlalchemy", "alembic", "celery", "kombu", "uvicorn")
TENSORFLOW = ("tensorflow", "tf_keras", "tensorflow_model_optimization")
GENERIC_NAMES = ("core", "backend", "worker", "frontend", "migrations")


def tree_copy(target: Path) -> Path:
    """The working tree's files as git sees them (tracked and untracked-not-ignored): what a clone would build.
    Links (prunelab/server -> ../backend, ...) stay links, as a clone has them."""
    git = ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"]
    listed = subprocess.run(git, cwd=REPO, capture_output=True, check=True).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source, copy = REPO / name, target / name
        if source.is_symlink() or source.is_file():
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy, follow_symlinks=False)
    return target


@dataclass(frozen=True)
class Dist:
    sdist: Path
    wheel: Path


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Dist:
    """`python -m build`: the sdist first, then the wheel built from the unpacked sdist (so the sdist is complete)."""
    source = tree_copy(tmp_path_factory.mktemp("source"))
    out = tmp_path_factory.mktemp("dist")
    built = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(source)],
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    [sdist], [wheel] = out.glob("prunelab-*.tar.gz"), out.glob("prunelab-*.whl")
    return Dist(sdist, wheel)


def top_level_names(names: list[str]) -> set[str]:
    return {name.split("/")[0] for name in names if ".dist-info/" not in name}


def test_prunelab_is_the_only_top_level_import_name(dist: Dist) -> None:
    names = zipfile.ZipFile(dist.wheel).namelist()
    size = dist.wheel.stat().st_size
    print(f"\n{dist.wheel.name}: {size:,} bytes, {len(names)} files, top level {top_level_names(names)}")
    print(f"{dist.sdist.name}: {dist.sdist.stat().st_size:,} bytes")
    assert top_level_names(names) == {"prunelab"}
    with tarfile.open(dist.sdist) as sdist:
        members = sdist.getmembers()
    assert not [m.name for m in members if m.issym() or m.islnk()], "the sdist must hold files, not links"
    assert any(m.name.endswith("/prunelab/server/app.py") for m in members)


def test_the_wheel_holds_every_part_with_the_dashboard_and_the_migrations(dist: Dist) -> None:
    names = set(zipfile.ZipFile(dist.wheel).namelist())
    for required in (
        "prunelab/__init__.py",
        "prunelab/client.py",
        "prunelab/cli.py",
        "prunelab/keras.py",
        "prunelab/core/specs.py",
        "prunelab/server/app.py",
        "prunelab/worker/training/train.py",
        "prunelab/dashboard/index.html",
        "prunelab/dashboard/run.html",
        "prunelab/dashboard/app.css",
        "prunelab/dashboard/js/common.js",
        "prunelab/migrations/alembic.ini",
        "prunelab/migrations/env.py",
        "prunelab/migrations/script.py.mako",
    ):
        assert required in names, required
    # Every module of every folder is in the wheel (a subpackage missing from the build would show here).
    for folder, part in (("core", "core"), ("backend", "server"), ("worker", "worker"), ("migrations", "migrations")):
        tree = {f"prunelab/{part}/{p.relative_to(REPO / folder)}" for p in (REPO / folder).rglob("*.py")}
        assert tree <= names, sorted(tree - names)[:5]
    assert not [n for n in names if n.split("/")[1:2] in (["tests"], ["bench"], ["harness"])]


def test_the_metadata_has_the_licence_urls_classifiers_and_one_version(dist: Dist) -> None:
    wheel = zipfile.ZipFile(dist.wheel)
    text = wheel.read(next(n for n in wheel.namelist() if n.endswith("/METADATA"))).decode()
    metadata = email.message_from_string(text)
    assert metadata["Version"] == prunelab.__version__
    assert metadata["License-Expression"] == "Apache-2.0"
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in wheel.namelist())
    assert {url.split(",")[0] for url in metadata.get_all("Project-URL", [])} >= {"Homepage", "Source", "Issues"}
    assert "Programming Language :: Python :: 3.13" in metadata.get_all("Classifier", [])
    assert metadata["Requires-Python"] == ">=3.11", "no upper bound that the dependencies do not impose"
    base = [r for r in metadata.get_all("Requires-Dist", []) if "extra ==" not in r]
    assert not [r for r in base if re.split(r"[<>=!~\[ ;]", r)[0].lower() in (*SERVER_LIBRARIES, "tensorflow")], base
    entry_points = wheel.read(next(n for n in wheel.namelist() if n.endswith("/entry_points.txt"))).decode()
    assert "prunelab = prunelab.cli:main" in entry_points


def readme_install_lines() -> dict[str, str]:
    """README's install block: role -> the `pip install` argument, keyed by the extra it names."""
    text = (REPO / "README.md").read_text()
    block = re.search(r"^## Install\n.*?```bash\n(.*?)```", text, re.S | re.M)
    assert block, "README.md needs an '## Install' section with a bash block"
    lines = re.findall(r"^pip install (\S+)", block.group(1), re.M)
    roles = {("client" if "[" not in arg else arg.split("[")[1].split("]")[0]): arg.strip("'") for arg in lines}
    assert set(roles) == {"client", "server", "worker"}, lines
    return roles


def fresh_venv(path: Path, borrow: Path | None = None) -> Path:
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    if borrow is not None:
        # Appended after the venv's own site-packages: what pip installs in the venv comes first, the
        # development environment's TensorFlow fills in what it does not (no second 600 MB download).
        site = Path(python(path, "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=path).strip())
        (site / "zz_borrowed_tensorflow.pth").write_text(f"{borrow}\n")
    return path


def pip_install(venv: Path, argument: str, wheel: Path) -> Path:
    """README's line with the wheel in place of the name on the index."""
    requirement = argument.replace("prunelab", str(wheel), 1)
    done = subprocess.run(
        [str(venv / "bin/python"), "-m", "pip", "install", "--quiet", requirement], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return venv


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PRUNELAB_")}
    return env | {"PYTHONPATH": "", "HOME": str(home), "PRUNELAB_HOME": str(home / "data")} | extra


def python(venv: Path, code: str, cwd: Path) -> str:
    """What `code` prints in the venv's interpreter, run outside the repository with no PRUNELAB_ setting."""
    done = subprocess.run(
        [venv / "bin/python", "-c", code], cwd=cwd, env=clean_env(cwd), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done.stdout


def found(venv: Path, modules: tuple[str, ...], cwd: Path) -> list[str]:
    return python(
        venv, f"import importlib.util as u; print(' '.join(m for m in {modules!r} if u.find_spec(m)))", cwd
    ).split()


@pytest.fixture(scope="module")
def client_venv(dist: Dist, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return pip_install(fresh_venv(tmp_path_factory.mktemp("client-venv")), readme_install_lines()["client"], dist.wheel)


def test_the_light_install_is_the_client_without_server_or_tensorflow(client_venv: Path, tmp_path: Path) -> None:
    assert found(client_venv, (*SERVER_LIBRARIES, *TENSORFLOW, "pandas", *GENERIC_NAMES), tmp_path) == []
    env = clean_env(tmp_path)
    probe = "from prunelab import Client; import prunelab; print(Client.__name__, prunelab.__file__)"
    imported = python(client_venv, probe, tmp_path)
    name, location = imported.split()
    assert name == "Client" and Path(location).is_relative_to(client_venv)
    command = str(client_venv / "bin/prunelab")
    helped = subprocess.run([command, "--help"], env=env, capture_output=True, text=True)
    assert helped.returncode == 0 and "submit" in helped.stdout and "Server commands" in helped.stdout, helped.stderr
    server = subprocess.run([command, "migrate"], env=env, capture_output=True, text=True)
    assert server.returncode == 2 and "pip install 'prunelab[server]'" in server.stderr, server.stderr
    nobody = f"http://127.0.0.1:{free_port()}"
    refused = subprocess.run([command, "--url", nobody, "runs", "ls"], env=env, capture_output=True, text=True)
    assert refused.returncode == 1 and "cannot reach PruneLab" in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr + server.stderr


@pytest.fixture(scope="module")
def server_venv(dist: Dist, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return pip_install(fresh_venv(tmp_path_factory.mktemp("server-venv")), readme_install_lines()["server"], dist.wheel)


def test_the_server_install_migrates_and_serves_without_tensorflow(server_venv: Path, tmp_path: Path) -> None:
    assert found(server_venv, TENSORFLOW, tmp_path) == []
    assert found(server_venv, GENERIC_NAMES, tmp_path) == []
    port = free_port()
    env = clean_env(tmp_path, PRUNELAB_PORT=str(port))
    command = str(server_venv / "bin/prunelab")
    worker = subprocess.run([command, "worker"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert worker.returncode == 2 and "pip install 'prunelab[worker]'" in worker.stderr, worker.stderr
    migrated = subprocess.run([command, "migrate"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert migrated.returncode == 0, migrated.stderr
    assert (tmp_path / "data" / "prunelab.sqlite").is_file()
    api = subprocess.Popen([command, "api"], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: healthy(base), timeout=90, what="the installed API")
        index = httpx.get(f"{base}/")
        assert index.status_code == 200 and "<html" in index.text.lower()
        plotly = httpx.get(f"{base}/vendor/plotly.min.js")
        assert plotly.status_code == 200 and len(plotly.content) > 1_000_000
        assert httpx.get(f"{base}/js/common.js").status_code == 200
    finally:
        api.terminate()
        api.wait(timeout=30)
    probe = "import prunelab.server as s, prunelab.migrations as m; print(s.__file__, m.__file__)"
    located = python(server_venv, probe, tmp_path)
    assert all(Path(path).is_relative_to(server_venv) for path in located.split()), located


@pytest.fixture(scope="module")
def worker_venv(dist: Dist, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    development = Path(sysconfig.get_paths()["purelib"])
    venv = fresh_venv(tmp_path_factory.mktemp("worker-venv"), borrow=development)
    # The wheel itself first (the development environment's editable prunelab must not satisfy it), then
    # README's line, whose TensorFlow, tf-keras and tfmot are then found already installed.
    subprocess.run([venv / "bin/python", "-m", "pip", "install", "--quiet", "--no-deps", dist.wheel], check=True)
    pip_install(venv, readme_install_lines()["worker"], dist.wheel)
    yield venv


def test_the_worker_install_runs_the_quick_start(worker_venv: Path, tmp_path: Path) -> None:
    port = free_port()
    env = clean_env(tmp_path, PRUNELAB_PORT=str(port))
    base = f"http://127.0.0.1:{port}"
    command = [str(worker_venv / "bin/prunelab"), "run"]
    stack = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: healthy(base), timeout=120, what="prunelab run from the worker install")
        schedule = {"kind": "constant", "target_sparsity": 0.5, "frequency": 5}
        spec = {"dataset": "digits", "model": "mlp", "epochs": 1, "schedule": schedule, "exports": ["keras"]}
        run = httpx.post(f"{base}/api/runs", json=spec, timeout=30).json()
        done = wait_for_run(base, run["id"], {"succeeded", "failed"}, timeout=400)
        assert done["status"] == "succeeded", done
        assert abs(done["summary"]["measured_sparsity"] - 0.5) < 0.01
        model = httpx.get(f"{base}/api/runs/{run['id']}/model", params={"format": "keras"}, timeout=60)
        assert model.status_code == 200 and model.content[:2] == b"PK"
    finally:
        stack.terminate()
        stack.wait(timeout=60)
    # The code that trained came from the worker venv, the borrowed environment lent only TensorFlow.
    located = python(worker_venv, "import prunelab.worker.training.train as t, tensorflow; print(t.__file__)", tmp_path)
    assert Path(located.strip()).is_relative_to(worker_venv), located
