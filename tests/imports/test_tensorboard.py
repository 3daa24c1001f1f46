"""TensorBoard event files written by tfmot's PruningSummaries become a PruneLab run, read without TensorFlow."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from harness.stack import REPO
from tests.imports.conftest import PruningLogs


def zipped(folder: Path, top: str = "logs") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, f"{top}/{path.relative_to(folder).as_posix()}")
    return buffer.getvalue()


def zip_of(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def assert_layer_sparsity(client: TestClient, run_id: int, expected: dict[str, dict[str, float]]) -> None:
    keys = ",".join(f"layer_sparsity/{layer}" for layer in expected)
    series = client.get(f"/api/runs/{run_id}/metrics", params={"keys": keys}).json()["series"]
    for layer, by_step in expected.items():
        stored = series[f"layer_sparsity/{layer}"]
        assert stored["steps"] == sorted(int(step) for step in by_step)
        for step, value in zip(stored["steps"], stored["values"], strict=True):
            assert value == pytest.approx(by_step[str(step)], abs=1e-6)  # tf.summary keeps float32


def test_the_reader_loads_no_tensorflow(pruning_logs: PruningLogs) -> None:
    probe = (
        "import sys, json; from pathlib import Path; from backend.imports.tensorboard_events import read_folder; "
        f"read = read_folder(Path({str(pruning_logs.folder)!r})); "
        "print(json.dumps({'keys': sorted(read.series), 'files': read.files, "
        "'tf': sorted({m.split('.')[0] for m in sys.modules} & {'tensorflow', 'tf_keras', 'keras'})}))"
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    read = json.loads(done.stdout.strip().splitlines()[-1])
    assert read["tf"] == []
    assert read["files"] == 3  # metrics/ (tfmot), train/ and validation/ (Keras)
    assert {"layer_sparsity/hidden", "layer_sparsity/logits", "threshold/hidden", "threshold/logits"} <= set(
        read["keys"]
    )
    assert {"train/epoch_loss", "train/epoch_accuracy", "validation/epoch_loss"} <= set(read["keys"])


def test_an_uploaded_zip_becomes_a_run_with_per_layer_sparsity(client: TestClient, pruning_logs: PruningLogs) -> None:
    answer = client.post(
        "/api/imports/tensorboard",
        files={"file": ("mnist-pruning.zip", zipped(pruning_logs.folder), "application/zip")},
        data={"name": "tfmot script"},
    )
    assert answer.status_code == 201, answer.text
    run = answer.json()
    assert run["status"] == "succeeded" and run["name"] == "tfmot script"
    imported = run["summary"]["imported"]
    assert imported["event_files"] == 3 and imported["problems"] == []
    schedule = json.loads(imported["params"]["pruning_schedule/hidden"])
    assert schedule["class_name"] == "ConstantSparsity" and schedule["config"]["target_sparsity"] == 0.5
    assert_layer_sparsity(client, run["id"], pruning_logs.expected["layer_sparsity"])
    assert max(pruning_logs.expected["layer_sparsity"]["hidden"].values()) == pytest.approx(0.5)
    # The spec and coverage come from the Keras model summary: schedule, wrapped layers and their weights.
    assert run["source"] == "tensorboard"
    assert run["spec"]["schedule"]["kind"] == "constant" and run["spec"]["schedule"]["target_sparsity"] == 0.5
    assert run["plan"]["total_steps"] == 18  # 3 epochs of 6 steps (192 training examples, batch 32)
    coverage = run["summary"]["coverage"]
    assert [(layer["name"], layer["wrapped"], layer["params"]) for layer in coverage["layers"]] == [
        ("hidden", True, 8 * 16 + 16),
        ("logits", True, 16 * 2 + 2),
    ]
    assert coverage["sparsity_prunable"] == pytest.approx(0.5)
    measured = client.get(f"/api/runs/{run['id']}/metrics", params={"keys": "measured_sparsity"}).json()
    assert measured["series"]["measured_sparsity"]["values"][-1] == pytest.approx(0.5)
    epochs = client.get(f"/api/runs/{run['id']}/metrics", params={"keys": "train/epoch_loss"}).json()
    assert epochs["series"]["train/epoch_loss"]["steps"] == list(range(pruning_logs.expected["epochs"]))
    assert run["id"] in [listed["id"] for listed in client.get("/api/runs").json()["runs"]]


def test_the_cli_imports_a_folder(client: TestClient, pruning_logs: PruningLogs) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "prunelab.server.cli", "import", "tensorboard", str(pruning_logs.folder),
         "--name", "from cli"],
        cwd=REPO, capture_output=True, text=True, timeout=120, env=dict(os.environ),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    run_id = int(done.stdout.split("imported run ", 1)[1].split()[0])
    assert client.get(f"/api/runs/{run_id}").json()["name"] == "from cli"
    assert_layer_sparsity(client, run_id, pruning_logs.expected["layer_sparsity"])
    missing = subprocess.run(
        [sys.executable, "-m", "prunelab.server.cli", "import", "tensorboard", "/nonexistent/logs"],
        cwd=REPO, capture_output=True, text=True, timeout=120, env=dict(os.environ),
    )  # fmt: skip
    assert missing.returncode == 2 and "is not a folder" in missing.stderr and "Traceback" not in missing.stderr


@pytest.mark.parametrize(
    ("upload", "reason"),
    [
        (b"not a zip at all", "not a zip archive"),
        (zip_of({"logs/readme.txt": b"hello"}), "no TensorBoard event files"),
        (zip_of({"../escape/events.out.tfevents.1.host": b"x"}), "outside the archive"),
        (zip_of({"logs/events.out.tfevents.1.host": b"\x00" * 40}), "no scalar summaries"),
    ],
)
def test_refused_uploads_say_why(client: TestClient, upload: bytes, reason: str) -> None:
    answer = client.post("/api/imports/tensorboard", files={"file": ("logs.zip", upload, "application/zip")})
    assert answer.status_code == 422, answer.text
    assert reason in json.dumps(answer.json())
