"""The compress stages after pruning (cluster, qat, tflite_int8): each trained as its own phase, exported and measured.

Every stage is measured the same way: test accuracy, sparsity and distinct values per pruned layer, the raw and
zipped size of its file, the information floor of its own weights (`core.compression`) and the ratio to the
dense model's zipped .h5. Zeros are checked at every stage against the pruned masks; the int8 files are
checked from their own tensors. A stage that breaks a promise (a zero that came back, more values than
clusters) fails the run rather than offering a file that is not what it says.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from prunelab.core.compression import floor_for, information_floor, shared_values
from prunelab.core.exports import ARTIFACT_FILE_NAMES, zipped_size
from prunelab.core.plans import RunPlan
from prunelab.core.recipes import LotteryTicketRecipe
from prunelab.core.specs import ClusterStage, QatStage, RunSpec, TfliteInt8Stage
from prunelab.worker.training import clustering, export, export_tflite, qat, sparse_tflite
from prunelab.worker.training.callbacks import PruningReporter
from prunelab.worker.training.datasets import Dataset
from prunelab.worker.training.reporting import Reporter
from prunelab.worker.training.tf import keras
from prunelab.worker.training.tflite_kernels import kernel_tensors, values_per_channel
from prunelab.worker.training.verify import ExportVerificationError

Data = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray] | None]
# fit_epochs(model, progress, spec, data, (first, last)) -> whether the run was stopped
FitEpochs = Callable[[keras.Model, PruningReporter, RunSpec, Data, tuple[int, int]], bool]
Compile = Callable[[keras.Model, float], None]


@dataclass
class Compressed:
    summary: dict[str, Any]
    files: dict[str, Path] = field(default_factory=dict)
    cancelled: bool = False


@dataclass
class _Context:
    spec: RunSpec
    dataset: Dataset
    masks: dict[str, np.ndarray]  # pruned layer -> True where the pruned model keeps a weight
    other_params: int
    dense_zip_bytes: int
    reporter: Reporter
    progress: PruningReporter
    output_dir: Path
    scratch: Path


def kernel_layers(model: keras.Model) -> dict[str, np.ndarray]:
    """The kernel of every Dense and Conv2D layer (the weights pruning and clustering act on), by layer name."""
    return {
        layer.name: layer.kernel.numpy()
        for layer in model.layers
        if isinstance(layer, keras.layers.Dense | keras.layers.Conv2D)
    }


def _layer_stats(kernels: dict[str, np.ndarray], per_channel: bool) -> dict[str, dict[str, float | int]]:
    return {
        name: {
            "sparsity": float(1.0 - np.count_nonzero(kernel) / kernel.size),
            "unique_values": values_per_channel(kernel) if per_channel else int(np.unique(kernel).size),
            "shared_values": shared_values(kernel),
        }
        for name, kernel in kernels.items()
    }


def _check_zeros(stage: str, kernels: dict[str, np.ndarray], ctx: _Context) -> dict[str, int]:
    """Every pruned zero is still zero; returns per layer the kept weights that became zero as well.

    Those are not errors: sparsity-preserving clustering keeps a zero centroid, and a kept weight nearest to
    it takes its value; an int8 file may round a tiny kept weight to zero. The summary reports them.
    """
    extra = {}
    for name, kept in ctx.masks.items():
        nonzero = kernels[name] != 0
        if np.any(nonzero & ~kept):
            raise ExportVerificationError(f"{stage}: layer {name!r} has non-zero weights where pruning left zeros")
        extra[name] = int(np.count_nonzero(kept & ~nonzero))
    return extra


def _check_values(stage: str, stats: dict[str, dict[str, float | int]], clusters: int | None) -> None:
    if clusters is None:
        return
    for name, layer in stats.items():
        if layer["unique_values"] > clusters:
            raise ExportVerificationError(
                f"{stage}: layer {name!r} holds {layer['unique_values']} distinct values, more than {clusters} clusters"
            )


def _row(
    ctx: _Context,
    kind: str,
    file_format: str,
    path: Path,
    accuracy: float,
    kernels: dict[str, np.ndarray],
    *,
    per_channel: bool,
    clusters: int | None,
    extra_zeros: dict[str, int] | None = None,
) -> dict[str, Any]:
    stats = _layer_stats({name: kernels[name] for name in ctx.masks}, per_channel)
    _check_values(kind, stats, clusters)
    floors = information_floor({name: kernels[name] for name in ctx.masks}, ctx.other_params)
    measured_floor = floors[floor_for(kind, clusters is not None)]
    zip_bytes = zipped_size(path)
    return {
        "stage": kind,
        "export": file_format,
        "test_accuracy": float(accuracy),
        "size_bytes": path.stat().st_size,
        "zip_bytes": zip_bytes,
        "floor_bytes": measured_floor,
        "floor_variant": floor_for(kind, clusters is not None),
        "floors": floors,
        "zip_over_floor": zip_bytes / measured_floor,
        "x_smaller_than_dense": ctx.dense_zip_bytes / zip_bytes,
        "clusters": clusters,
        "layers": stats,
        "extra_zeros": extra_zeros or dict.fromkeys(ctx.masks, 0),
        "reference": False,
    }


def _log(ctx: _Context, row: dict[str, Any]) -> None:
    prefix = f"stage/{row['stage']}/"
    metrics = {
        f"{prefix}{key}": row[key]
        for key in ("test_accuracy", "zip_bytes", "size_bytes", "floor_bytes", "x_smaller_than_dense")
    }
    for name, layer in row["layers"].items():
        metrics[f"{prefix}layer_sparsity/{name}"] = layer["sparsity"]
        metrics[f"{prefix}unique_values/{name}"] = layer["unique_values"]
    ctx.reporter.log(ctx.progress.step, metrics, ctx.progress.wall_time())


def _evaluate(model: keras.Model, dataset: Dataset, batch_size: int) -> float:
    return float(model.evaluate(dataset.x_test, dataset.y_test, batch_size=batch_size, verbose=0)[1])


def _tflite_accuracy(path: Path, dataset: Dataset) -> float:
    outputs = export_tflite.predict(path, dataset.x_test)
    return float(np.mean(outputs.argmax(axis=1) == dataset.y_test))


def _int8(model: keras.Model, path: Path, ctx: _Context, calibration_examples: int) -> Path:
    return export_tflite.write_tflite(
        model,
        path,
        int8="full_integer",
        calibration=ctx.dataset.x_train,
        calibration_examples=calibration_examples,
    )


def _copy(model: keras.Model) -> keras.Model:
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def first_compress_epoch(spec: RunSpec) -> int:
    """The epoch index (on the run's one axis) at which the first compress stage trains."""
    retrain = spec.recipe.retrain_epochs if isinstance(spec.recipe, LotteryTicketRecipe) else 0
    return spec.epochs + retrain


def compress(
    stripped: keras.Model,
    spec: RunSpec,
    plan: RunPlan,
    dataset: Dataset,
    data: Data,
    progress: PruningReporter,
    reporter: Reporter,
    output_dir: Path,
    *,
    pruned_file: Path,
    pruned_accuracy: float,
    dense_zip_bytes: int,
    fit_epochs: FitEpochs,
    compile_model: Compile,
) -> Compressed:
    """Run the spec's compress stages on the stripped pruned model; measure the pruned model as the first stage."""
    kernels = kernel_layers(stripped)
    other_params = int(stripped.count_params()) - sum(kernel.size for kernel in kernels.values())
    scratch = export.scratch_folder(output_dir, "compress")
    ctx = _Context(
        spec,
        dataset,
        {name: kernel != 0 for name, kernel in kernels.items()},
        other_params,
        dense_zip_bytes,
        reporter,
        progress,
        output_dir,
        scratch,
    )
    try:
        return _stages(stripped, plan, data, ctx, pruned_file, pruned_accuracy, fit_epochs, compile_model)
    finally:
        export.remove_folder(scratch)


def _stages(
    stripped: keras.Model,
    plan: RunPlan,
    data: Data,
    ctx: _Context,
    pruned_file: Path,
    pruned_accuracy: float,
    fit_epochs: FitEpochs,
    compile_model: Compile,
) -> Compressed:
    spec = ctx.spec
    result = Compressed(summary={})
    pruned = _row(
        ctx, "pruned", "h5", pruned_file, pruned_accuracy, kernel_layers(stripped), per_channel=False, clusters=None
    )
    rows = [pruned]
    _log(ctx, pruned)
    phase = len(plan.phase_steps) - sum(1 for stage in spec.compress if stage.kind in ("cluster", "qat"))
    epoch = first_compress_epoch(spec)
    current = stripped  # the latest float Keras model
    clusters: int | None = None
    qat_file: Path | None = None  # the int8 file converted from the quantization-aware model
    extra: dict[str, int] | None
    for stage in spec.compress:
        if isinstance(stage, ClusterStage | QatStage):
            phase += 1
            ctx.progress.epoch_metrics = {"phase": phase}
            # tfmot's wrappers train the wrapped layer's own variables: wrap a copy, so each stage's input stays put.
            source = _copy(current)
            wrapped = (
                clustering.cluster(source, stage) if isinstance(stage, ClusterStage) else qat.quantize(source, stage)
            )
            compile_model(wrapped, stage.learning_rate)
            if stage.epochs and fit_epochs(wrapped, ctx.progress, spec, data, (epoch, epoch + stage.epochs)):
                result.cancelled = True
                return result
            epoch += stage.epochs
        if isinstance(stage, ClusterStage):
            current = clustering.strip(wrapped)
            clusters = stage.number_of_clusters
            path = export.save_exports(current, ctx.scratch, ["h5"])["h5"]
            result.files["clustered_h5"] = path.rename(ctx.output_dir / ARTIFACT_FILE_NAMES["clustered_h5"])
            compile_model(current, stage.learning_rate)
            clustered_kernels = kernel_layers(current)
            extra = _check_zeros("cluster", clustered_kernels, ctx) if stage.preserve_sparsity else None
            row = _row(
                ctx,
                "cluster",
                "clustered_h5",
                result.files["clustered_h5"],
                _evaluate(current, ctx.dataset, spec.batch_size),
                clustered_kernels,
                per_channel=False,
                clusters=clusters,
                extra_zeros=extra,
            )
        elif isinstance(stage, QatStage):
            result.files["qat_h5"] = ctx.output_dir / ARTIFACT_FILE_NAMES["qat_h5"]
            wrapped.save(result.files["qat_h5"])  # HDF5: tf-keras's .keras does not reload quantize layers
            calibration = next((s.calibration_examples for s in spec.compress if isinstance(s, TfliteInt8Stage)), 100)
            qat_file = _int8(wrapped, ctx.output_dir / ARTIFACT_FILE_NAMES["tflite_int8_compressed"], ctx, calibration)
            int8_kernels = kernel_tensors(qat_file, {name: mask.shape for name, mask in ctx.masks.items()})
            extra = _check_zeros("qat", int8_kernels, ctx) if stage.scheme != "default" else None
            row = _row(
                ctx,
                "qat",
                "qat_h5",
                result.files["qat_h5"],
                _evaluate(wrapped, ctx.dataset, spec.batch_size),
                int8_kernels,
                per_channel=True,
                clusters=clusters if stage.scheme == "pcqat" else None,
                extra_zeros=extra,
            )
        else:
            row = _tflite_stage(stage, stripped, current, qat_file, ctx, clusters, result)
            rows.append(_tflite_reference(stripped, stage, ctx, result))
        rows.append(row)
        _log(ctx, row)
    if qat_file is not None and "tflite_int8_compressed" not in result.files:
        qat_file.unlink()  # converted only to read the quantized kernels back; the stage list has no tflite_int8
    result.summary["compression"] = {
        "dense_h5_zip_bytes": ctx.dense_zip_bytes,
        "stages": rows,
        **result.summary.get("compression", {}),
    }
    return result


def _tflite_stage(
    stage: TfliteInt8Stage,
    stripped: keras.Model,
    current: keras.Model,
    qat_file: Path | None,
    ctx: _Context,
    clusters: int | None,
    result: Compressed,
) -> dict[str, Any]:
    """Full-integer TFLite of the last stage (the quantization-aware model's, already converted), checked from its
    tensors; and the float model stored sparse, against the dense float file."""
    path = qat_file or _int8(
        current, ctx.output_dir / ARTIFACT_FILE_NAMES["tflite_int8_compressed"], ctx, stage.calibration_examples
    )
    result.files["tflite_int8_compressed"] = path
    int8_kernels = kernel_tensors(path, {name: mask.shape for name, mask in ctx.masks.items()})
    extra = _check_zeros("tflite_int8", int8_kernels, ctx)
    row = _row(
        ctx,
        "tflite_int8",
        "tflite_int8_compressed",
        path,
        _tflite_accuracy(path, ctx.dataset),
        int8_kernels,
        per_channel=True,
        clusters=clusters,
        extra_zeros=extra,
    )
    dense_float = export_tflite.write_tflite(current, ctx.scratch / "dense_float.tflite")
    result.files["tflite_sparse"] = export_tflite.write_tflite(
        current, ctx.output_dir / ARTIFACT_FILE_NAMES["tflite_sparse"], sparse=True
    )
    sparse = sparse_tflite.measure(dense_float, result.files["tflite_sparse"], ctx.dataset.x_test)
    sparse.update(
        {
            "float_size_bytes": dense_float.stat().st_size,
            "float_zip_bytes": zipped_size(dense_float),
            "sparse_size_bytes": result.files["tflite_sparse"].stat().st_size,
            "sparse_zip_bytes": zipped_size(result.files["tflite_sparse"]),
            "xnnpack_sparse_inference": sparse_tflite.qualification(current),
        }
    )
    if not sparse["same_predictions"]:
        raise ExportVerificationError(
            f"the sparse TFLite file predicts differently from the dense one (max |difference| "
            f"{sparse['max_abs_difference']:.3g})"
        )
    result.summary["compression"] = {"sparse_tflite": sparse}
    metrics = {
        f"sparse_tflite/{k}": v for k, v in sparse.items() if isinstance(v, int | float) and not isinstance(v, bool)
    }
    ctx.reporter.log(ctx.progress.step, metrics, ctx.progress.wall_time())
    return row


def _tflite_reference(
    stripped: keras.Model, stage: TfliteInt8Stage, ctx: _Context, result: Compressed
) -> dict[str, Any]:
    """The plain pruned model converted the same way: what the compress stages add over pruning + int8 alone."""
    path = _int8(stripped, ctx.output_dir / ARTIFACT_FILE_NAMES["tflite_int8_pruned"], ctx, stage.calibration_examples)
    result.files["tflite_int8_pruned"] = path
    int8_kernels = kernel_tensors(path, {name: mask.shape for name, mask in ctx.masks.items()})
    extra = _check_zeros("pruned_int8", int8_kernels, ctx)
    row = _row(
        ctx,
        "pruned_int8",
        "tflite_int8_pruned",
        path,
        _tflite_accuracy(path, ctx.dataset),
        int8_kernels,
        per_channel=True,
        clusters=None,
        extra_zeros=extra,
    )
    row["reference"] = True  # beside the chain, not a step of it
    _log(ctx, row)
    return row
