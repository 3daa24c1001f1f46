"""One training trial in a fresh process, so that its peak RSS is its own: `python -m bench.trial ARM SPEC_JSON`.

ARM is `plain` (a tfmot script as the pruning_with_keras tutorial writes it) or
`prunelab` (the worker's task body, `execute_run`, on a queued run in the database
named by PRUNELAB_DATABASE_URL). Prints one JSON line with the timings and peak RSS.
TensorFlow is imported before any clock starts: both arms pay it alike, and it is not training.
"""

from __future__ import annotations

import json
import resource
import sys
import tempfile
import time
from pathlib import Path

from prunelab.core.exports import zipped_size
from prunelab.core.plans import resolve_plan
from prunelab.core.specs import RunSpec


def timed_fit(timings: list[float]):  # type: ignore[no-untyped-def]
    """Wrap tf-keras's Model.fit to time it, so the PruneLab arm's fit is timed without touching its code."""
    from prunelab.worker.training.tf import keras

    original = keras.Model.fit

    def fit(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        try:
            return original(self, *args, **kwargs)
        finally:
            timings.append(time.perf_counter() - started)

    keras.Model.fit = fit


def plain_tfmot(spec: RunSpec, data_dir: Path) -> dict[str, float]:
    """The tutorial's script: prune_low_magnitude, UpdatePruningStep, fit, strip, save .h5, evaluate."""
    from prunelab.worker.training.datasets import load_dataset
    from prunelab.worker.training.tf import keras, tfmot
    from prunelab.worker.training.train import tfmot_schedule
    from prunelab.worker.training.zoo import build_model

    plan = resolve_plan(spec)
    fit_seconds: list[float] = []
    started = time.perf_counter()
    keras.utils.set_random_seed(spec.seed)
    dataset = load_dataset(spec.dataset, data_dir)
    model = build_model(spec.model, dataset.info.input_shape, dataset.info.num_classes)
    pruned = tfmot.sparsity.keras.prune_low_magnitude(model, pruning_schedule=tfmot_schedule(plan.schedule))
    pruned.compile(
        optimizer=keras.optimizers.Adam(spec.learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    fit_started = time.perf_counter()
    pruned.fit(
        dataset.x_train,
        dataset.y_train,
        batch_size=spec.batch_size,
        epochs=spec.epochs,
        validation_split=spec.validation_split,
        verbose=0,
        callbacks=[tfmot.sparsity.keras.UpdatePruningStep()],
    )
    fit_seconds.append(time.perf_counter() - fit_started)
    stripped = tfmot.sparsity.keras.strip_pruning(pruned)
    with tempfile.TemporaryDirectory() as scratch:
        stripped.save(Path(scratch) / "model.h5", include_optimizer=False)
        h5_zip_bytes = zipped_size(Path(scratch) / "model.h5")
    kernels = [weight.numpy() for weight in stripped.weights if "kernel" in weight.name]
    sparsity = sum(int((kernel == 0).sum()) for kernel in kernels) / sum(kernel.size for kernel in kernels)
    stripped.compile(
        optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"]
    )
    _, test_accuracy = stripped.evaluate(dataset.x_test, dataset.y_test, batch_size=spec.batch_size, verbose=0)
    return {
        "wall_s": time.perf_counter() - started,
        "fit_s": fit_seconds[0],
        "steps": plan.total_steps,
        "test_accuracy": float(test_accuracy),
        "h5_zip_bytes": h5_zip_bytes,
        "kernel_sparsity": sparsity,
    }


def prunelab(spec: RunSpec) -> dict[str, float]:
    """What the Celery task does: claim the queued run, train with the DatabaseReporter, store the outcome."""
    from sqlalchemy import func, select

    from bench.stacks import queued_run
    from prunelab.server.db import session_scope
    from prunelab.server.models import Metric, Run
    from prunelab.worker.executor import execute_run

    run_id = queued_run(spec, "overhead")
    fit_seconds: list[float] = []
    timed_fit(fit_seconds)
    started = time.perf_counter()
    outcome = execute_run(run_id, "bench")
    wall = time.perf_counter() - started
    if outcome != "succeeded":
        raise RuntimeError(f"run {run_id} ended {outcome}")
    with session_scope() as session:
        points = session.scalar(select(func.count()).select_from(Metric).where(Metric.run_id == run_id)) or 0
        summary = session.get(Run, run_id).summary or {}
    return {
        "wall_s": wall,
        "fit_s": fit_seconds[0],
        "steps": int(summary["steps"]),
        "test_accuracy": float(summary["test_accuracy"]),
        "points": int(points),
    }


def main() -> None:
    arm, spec_json = sys.argv[1], sys.argv[2]
    spec = RunSpec.model_validate_json(spec_json)
    from prunelab.server.settings import get_settings

    # TensorFlow loads here, before any clock starts. (`import prunelab.worker...` would bind the name `prunelab`
    # in this function and hide the arm below.)
    from prunelab.worker.training import train  # noqa: F401

    settings = get_settings()
    assert settings.data_dir is not None
    result = plain_tfmot(spec, settings.data_dir) if arm == "plain" else prunelab(spec)
    # ru_maxrss is in KiB on Linux: the peak resident set of this process, TensorFlow included.
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("TRIAL " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
