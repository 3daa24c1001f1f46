"""A tfmot script with MLflow's own Keras callback (`mlflow.tensorflow.MlflowCallback`, tf-keras) logs into PruneLab.

MLflow's virtualenv has no TensorFlow and PruneLab's has no MLflow (their pins clash), so the script
runs with PruneLab's interpreter and MLflow's packages appended after its own: TensorFlow, tf-keras
and tfmot come from PruneLab's environment, MLflow from its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx
import pytest

from tests.mlflow_api.conftest import Live

pytestmark = pytest.mark.integration

SCRIPT = """
import json, os, sys
os.environ["TF_USE_LEGACY_KERAS"] = "1"
sys.path.append(sys.argv[2])  # MLflow's site-packages, after this environment's own
import numpy as np
import tensorflow_model_optimization as tfmot
import tf_keras as keras
import mlflow

mlflow.set_tracking_uri(sys.argv[1])
mlflow.set_experiment("tfmot with MLflow's callback")
x = np.random.RandomState(0).rand(256, 8).astype("float32")
y = (x.sum(axis=1) > 4).astype("int32")
model = keras.Sequential([keras.layers.Dense(16, activation="relu", input_shape=(8,)), keras.layers.Dense(2)])
schedule = tfmot.sparsity.keras.ConstantSparsity(0.5, begin_step=0, frequency=4)
pruned = tfmot.sparsity.keras.prune_low_magnitude(model, pruning_schedule=schedule)
pruned.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
with mlflow.start_run(run_name="tfmot + MlflowCallback") as run:
    pruned.fit(x, y, epochs=2, batch_size=32, verbose=0, callbacks=[
        tfmot.sparsity.keras.UpdatePruningStep(),
        mlflow.tensorflow.MlflowCallback(log_every_epoch=False, log_every_n_steps=1),
    ])
print(json.dumps({"run_id": run.info.run_id}))
"""


def test_mlflows_keras_callback_in_a_tfmot_script_logs_every_step(live: Live) -> None:
    site_packages = next(live.python.parent.parent.glob("lib/python*/site-packages"))
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("PRUNELAB_", "MLFLOW_"))}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, live.url, str(site_packages)],
        capture_output=True, text=True, timeout=600, env=environment, cwd="/",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    run_id = int(json.loads(done.stdout.strip().splitlines()[-1])["run_id"])

    run = httpx.get(f"{live.url}/api/runs/{run_id}", timeout=30).json()
    assert run["status"] == "succeeded" and run["source"] == "mlflow"
    series = httpx.get(f"{live.url}/api/runs/{run_id}/metrics", params={"keys": "loss,accuracy"}, timeout=30).json()
    # 256 examples in batches of 32: 8 steps an epoch, 2 epochs, one point per step (the callback counts from 1).
    assert series["series"]["loss"]["steps"] == list(range(1, 17))
    assert len(series["series"]["accuracy"]["values"]) == 16
    mlflow_run = httpx.get(f"{live.url}/api/2.0/mlflow/runs/get", params={"run_id": str(run_id)}, timeout=30).json()
    params = {p["key"]: p["value"] for p in mlflow_run["run"]["data"]["params"]}
    assert params["opt_name"] == "Adam"  # the callback logs the optimizer's configuration as params
