"""PruneLabCallback in a tfmot script PruneLab did not write: a Functional model on a tf.data pipeline, trained
here, logged into a live API; then everything is read back over the API. And a server outage mid-training."""

from __future__ import annotations

import collections
import csv as csv_module
import io
import json
import time
import zipfile
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from harness.stack import wait_for_run
from tests.client.conftest import LiveStack, compare_overlays

pytestmark = pytest.mark.integration

TARGET = 0.75
BATCH = 32
EXAMPLES = 512  # 16 steps per epoch
EPOCHS = 3
BEGIN_STEP = 10
FREQUENCY = 8


def tf_modules() -> tuple[Any, Any, Any]:
    import os

    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    import tensorflow as tf
    import tensorflow_model_optimization as tfmot
    import tf_keras as keras

    return tf, tfmot, keras


def pipeline(tf: Any, examples: int, seed: int) -> Any:
    """A custom input pipeline: synthetic 8x8 images whose class is the brightest row, augmented with noise."""
    rng = np.random.default_rng(seed)
    images = rng.random((examples, 8, 8, 1), dtype=np.float32)
    labels = images[..., 0].sum(axis=2).argmax(axis=1).astype(np.int64)
    noise = tf.random.Generator.from_seed(seed)
    dataset = tf.data.Dataset.from_tensor_slices((images, labels))
    dataset = dataset.map(lambda x, y: (x + 0.01 * noise.normal(tf.shape(x)), y))
    return dataset.batch(BATCH).prefetch(2)


def pruned_functional_model(tf: Any, tfmot: Any, keras: Any) -> Any:
    """A two-branch Functional model; its conv and hidden layers are wrapped, its classifier is left dense."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input(shape=(8, 8, 1), name="pixels")
    features = keras.layers.Conv2D(8, 3, activation="relu", name="conv")(inputs)
    flat = keras.layers.Flatten(name="flatten")(features)
    hidden = keras.layers.Dense(32, activation="relu", name="hidden")(flat)
    skip = keras.layers.Dense(32, activation="relu", name="skip")(keras.layers.Flatten(name="raw")(inputs))
    merged = keras.layers.Add(name="merge")([hidden, skip])
    outputs = keras.layers.Dense(8, name="logits")(merged)
    model = keras.Model(inputs, outputs, name="two_branch")
    schedule = tfmot.sparsity.keras.ConstantSparsity(TARGET, begin_step=BEGIN_STEP, end_step=-1, frequency=FREQUENCY)

    def wrap(layer: Any) -> Any:
        if layer.name in ("conv", "hidden", "skip"):
            return tfmot.sparsity.keras.prune_low_magnitude(layer, pruning_schedule=schedule)
        return layer

    pruned = keras.models.clone_model(model, clone_function=wrap)
    pruned.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return pruned


class Recorder:
    """Every (key, step) the callback hands its sender, to compare with what the server holds."""

    def __init__(self, callback: Any) -> None:
        self.logged: set[tuple[str, int]] = set()
        original = callback.sender.log

        def log(run_key: str, step: int, metrics: dict[str, float], wall_time: float) -> None:
            self.logged.update((key, step) for key in metrics)
            original(run_key, step, metrics, wall_time)

        callback.sender.log = log


def server_points(url: str, run_id: int) -> collections.Counter[tuple[str, int]]:
    """(key, step) -> how many rows the server's CSV export holds for it."""
    csv = httpx.get(f"{url}/api/runs/{run_id}/metrics.csv", timeout=30)
    assert csv.status_code == 200, csv.text
    rows = list(csv_module.DictReader(io.StringIO(csv.text)))
    return collections.Counter((row["key"], int(row["step"])) for row in rows)


def test_a_script_logs_a_pruned_functional_model(live: LiveStack, spool_dir: Path, queued_run: int) -> None:
    tf, tfmot, keras = tf_modules()
    from prunelab.keras import PruneLabCallback

    model = pruned_functional_model(tf, tfmot, keras)
    callback = PruneLabCallback(name="my own script", url=live.url, dataset="synthetic rows", exports=["keras", "h5"])
    recorder = Recorder(callback)
    model.fit(
        pipeline(tf, EXAMPLES, 1),
        validation_data=pipeline(tf, 64, 2),
        epochs=EPOCHS,
        verbose=0,
        callbacks=[tfmot.sparsity.keras.UpdatePruningStep(), callback],
    )
    run_id = callback.run_id
    assert run_id is not None
    run = wait_for_run(live.url, run_id, {"succeeded", "failed"}, timeout=60)
    assert run["status"] == "succeeded", run.get("error")
    total = EPOCHS * EXAMPLES // BATCH

    # The spec and plan as read from the model and fit.
    spec, plan = run["spec"], run["plan"]
    assert run["source"] == "keras_callback" and spec["model"] == "two_branch" and spec["dataset"] == "synthetic rows"
    assert spec["schedule"]["kind"] == "constant" and spec["schedule"]["target_sparsity"] == TARGET
    assert (spec["epochs"], spec["steps_per_epoch"]) == (EPOCHS, EXAMPLES // BATCH)
    assert {layer["name"] for layer in spec["layers"] if layer["wrapped"]} == {"conv", "hidden", "skip"}
    assert plan["total_steps"] == total and plan["target_sparsity"] == TARGET
    pruning_steps = list(range(BEGIN_STEP, total + 1, FREQUENCY))
    assert plan["last_pruning_step"] == pruning_steps[-1]

    # Per-step measured sparsity reaching the target, planned vs measured, and the rest of what was logged.
    series = httpx.get(f"{live.url}/api/runs/{run_id}/metrics", timeout=30).json()["series"]
    measured = series["measured_sparsity"]
    assert measured["steps"] == list(range(1, total + 1))
    assert measured["values"][BEGIN_STEP - 2] == 0.0 and measured["values"][-1] == pytest.approx(TARGET, abs=0.01)
    assert series["target_sparsity"]["values"][-1] == TARGET and series["target_sparsity"]["values"][0] == 0.0
    assert series["loss"]["steps"] == list(range(1, total + 1)) and series["accuracy"]["steps"][-1] == total
    for layer in ("conv", "hidden", "skip"):
        assert series[f"layer_sparsity/{layer}"]["steps"] == pruning_steps
        assert series[f"layer_sparsity/{layer}"]["values"][-1] == pytest.approx(TARGET, abs=0.01)
        assert series[f"mask_churn/{layer}"]["steps"] == pruning_steps
    assert "layer_sparsity/logits" not in series
    assert series["val_accuracy"]["steps"] == [16, 32, 48] and series["epoch"]["values"] == [1, 2, 3]
    assert series["compressed_size_bytes"]["steps"] == sorted(set(pruning_steps) | {16, 32, 48})
    assert {key for key, _ in recorder.logged} == set(series)

    # The coverage report of the stripped model.
    coverage = {layer["name"]: layer for layer in run["summary"]["coverage"]["layers"]}
    assert coverage["conv"]["wrapped"] and coverage["hidden"]["wrapped"] and coverage["skip"]["wrapped"]
    assert not coverage["logits"]["wrapped"] and coverage["logits"]["pruned_params"] == 0
    assert coverage["flatten"]["reason"] == "no weights"
    assert coverage["hidden"]["pruned_params"] == pytest.approx(TARGET * 6 * 6 * 8 * 32, abs=2)  # its kernel only
    assert run["summary"]["coverage"]["sparsity_prunable"] == pytest.approx(TARGET, abs=0.01)
    assert run["summary"]["measured_sparsity"] == pytest.approx(TARGET, abs=0.01)

    # The stripped model: no pruning wrapper left, its kernels as sparse as measured.
    assert {artifact["format"] for artifact in run["artifacts"]} == {"keras", "h5"}
    download = httpx.get(f"{live.url}/api/runs/{run_id}/model?format=keras", timeout=30)
    assert download.status_code == 200
    with zipfile.ZipFile(io.BytesIO(download.content)) as archive:
        config = archive.read("config.json").decode()
    assert "PruneLowMagnitude" not in config and "prune_low_magnitude" not in config
    assert {layer["config"]["name"] for layer in json.loads(config)["config"]["layers"]} >= {"conv", "hidden", "logits"}
    path = spool_dir / "downloaded.keras"
    path.write_bytes(download.content)
    loaded = keras.models.load_model(path)
    kernel = loaded.get_layer("hidden").kernel.numpy()
    assert 1 - np.count_nonzero(kernel) / kernel.size == pytest.approx(TARGET, abs=0.01)

    # Compared with a run PruneLab trained itself.
    compare_overlays(live.url, run_id, queued_run)
    assert not (spool_dir / "spool.sqlite").exists() or callback.spool.point_count() == 0


def test_points_logged_while_the_api_is_down_arrive_exactly_once(live: LiveStack, spool_dir: Path) -> None:
    tf, tfmot, keras = tf_modules()
    from prunelab.keras import PruneLabCallback

    model = pruned_functional_model(tf, tfmot, keras)
    callback = PruneLabCallback(name="outage", url=live.url, flush_interval_s=0.2)
    recorder = Recorder(callback)
    seen: dict[str, int] = {}

    class Outage(keras.callbacks.Callback):  # type: ignore[misc,name-defined]
        """Stops the API at step 6 and starts it again at step 30, while training goes on."""

        step = 0

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            self.step += 1
            if self.step == 6:
                assert callback.wait_for_run_id(30) is not None
                live.stop_api()
            if self.step == 30:
                seen["spooled"] = callback.spool.point_count()
                live.start_api()

    model.fit(
        pipeline(tf, EXAMPLES, 3),
        epochs=EPOCHS,
        verbose=0,
        callbacks=[tfmot.sparsity.keras.UpdatePruningStep(), callback, Outage()],
    )
    run_id = callback.run_id
    assert run_id is not None
    run = wait_for_run(live.url, run_id, {"succeeded", "failed"}, timeout=60)
    assert run["status"] == "succeeded"
    counts = server_points(live.url, run_id)
    total = EPOCHS * EXAMPLES // BATCH
    print(
        f"spool test: {len(recorder.logged)} points logged, {seen['spooled']} waiting in the spool when the API came "
        f"back, {sum(counts.values())} rows on the server, max per (key, step) {max(counts.values())}"
    )
    assert seen["spooled"] > 0  # the outage was real: points waited in the spool
    assert set(counts) == recorder.logged  # every point arrived...
    assert set(counts.values()) == {1}  # ...exactly once
    assert sum(1 for key, _ in counts if key == "loss") == total
    assert callback.spool.point_count() == 0


def test_cancelling_on_the_dashboard_stops_the_script(live: LiveStack, spool_dir: Path) -> None:
    tf, tfmot, keras = tf_modules()
    from prunelab.keras import PruneLabCallback

    model = pruned_functional_model(tf, tfmot, keras)
    callback = PruneLabCallback(name="cancelled", url=live.url, flush_interval_s=0.1)

    class CancelAtStep4(keras.callbacks.Callback):  # type: ignore[misc,name-defined]
        step = 0
        deadline = 0.0

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            self.step += 1
            if self.step == 4:
                run_id = callback.wait_for_run_id(30)
                assert httpx.post(f"{live.url}/api/runs/{run_id}/cancel", timeout=30).json()["status"] == "cancelled"
                self.deadline = time.monotonic() + 60  # one deadline for the refusal, however many steps follow
            elif self.step > 4:
                # The script hears of the cancel when its next point is refused (409). A loaded machine may run
                # all 48 tiny steps before the sender's next post: wait here for the refusal, as a slow step would.
                while not callback.sender.run_ended(callback.run_key) and time.monotonic() < self.deadline:
                    time.sleep(0.02)

    history = model.fit(
        pipeline(tf, EXAMPLES, 4),
        epochs=EPOCHS,
        verbose=0,
        callbacks=[tfmot.sparsity.keras.UpdatePruningStep(), callback, CancelAtStep4()],
    )
    # fit stopped within the first epoch, without an error: at the first batch after the 409 (step 5, or 6 when
    # step 5's point was posted before the refusal reached the callback)
    assert 4 < callback.step <= 6 and len(history.epoch) == 1
    run = httpx.get(f"{live.url}/api/runs/{callback.run_id}", timeout=30).json()
    assert run["status"] == "cancelled" and run["artifacts"] == []
    assert callback.spool.point_count() == 0 and callback.spool.runs(live.url) == []


def test_each_fit_with_the_same_callback_is_a_run_of_its_own(live: LiveStack, spool_dir: Path) -> None:
    tf, tfmot, keras = tf_modules()
    from prunelab.keras import PruneLabCallback

    model = pruned_functional_model(tf, tfmot, keras)
    callback = PruneLabCallback(name="twice", url=live.url, flush_interval_s=0.1)
    run_ids = []
    for seed in (5, 6):
        model.fit(pipeline(tf, EXAMPLES, seed), epochs=1, verbose=0,
                  callbacks=[tfmot.sparsity.keras.UpdatePruningStep(), callback])  # fmt: skip
        run_ids.append(callback.run_id)
    assert None not in run_ids and run_ids[0] != run_ids[1]
    for run_id in run_ids:
        assert wait_for_run(live.url, run_id, {"succeeded", "failed"}, timeout=60)["status"] == "succeeded"
        loss = httpx.get(f"{live.url}/api/runs/{run_id}/metrics", params={"keys": "loss"}, timeout=30).json()
        assert loss["series"]["loss"]["steps"] == list(range(1, EXAMPLES // BATCH + 1))
