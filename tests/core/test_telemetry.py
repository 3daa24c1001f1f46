"""The telemetry arithmetic both training paths call: mask sparsity, churn, stripped weights, sizes, coverage."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from prunelab.core.telemetry import (
    COMPRESSION_LEVEL,
    BatchMetricRecovery,
    LayerWeights,
    MaskHistory,
    apply_masks,
    compressed_size,
    coverage_report,
    layer_masks,
    mask_sparsity,
    weight_counts,
)


def test_mask_sparsity_overall_weighs_each_mask_by_its_size() -> None:
    masks = layer_masks(["a", "a", "b"], [np.array([0, 1, 1, 1]), np.array([0, 0]), np.array([0, 0, 0, 1])])
    sparsity = mask_sparsity(masks)
    assert sparsity.by_layer == {"a": 0.5, "b": 0.75}
    assert sparsity.overall == 6 / 10
    assert sparsity.metrics() == {"layer_sparsity/a": 0.5, "layer_sparsity/b": 0.75}
    assert mask_sparsity({}).overall == 0.0


def test_churn_is_the_fraction_of_bits_flipped_since_the_previous_event() -> None:
    history = MaskHistory()
    assert history.record(3, {"a": [np.array([[1.0, 1.0], [1.0, 1.0]])]}) == {"a": 0.0}
    assert history.record(6, {"a": [np.array([[0.0, 1.0], [0.0, 1.0]])]}) == {"a": 0.5}
    assert history.record(9, {"a": [np.array([[0.0, 1.0], [1.0, 1.0]])]}) == {"a": 0.25}
    assert sorted(history.pictures) == ["a@3", "a@6", "a@9"]
    assert history.pictures["a@6"].tolist() == [[0, 255], [0, 255]]


def test_stripped_weights_are_the_weights_times_their_masks_and_compress_with_zlib() -> None:
    kernel, bias, mask = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32), np.ones(2, np.float32), np.eye(2)
    stripped = apply_masks([True, False], [kernel, bias, mask])
    assert [array.tolist() for array in stripped] == [[[1.0, 0.0], [0.0, 4.0]], [1.0, 1.0]]
    expected = len(zlib.compress(stripped[0].tobytes() + stripped[1].tobytes(), COMPRESSION_LEVEL))
    assert compressed_size(stripped) == expected


def test_coverage_and_counts_of_a_stripped_model() -> None:
    kernel = np.array([[0.0, 1.0], [0.0, 0.0]])
    layers = [
        LayerWeights("flatten", "Flatten", False, "no weights", 0, []),
        LayerWeights("dense", "Dense", True, None, 6, [kernel]),
    ]
    coverage = coverage_report(layers)
    assert [(row["name"], row["pruned_params"]) for row in coverage["layers"]] == [("flatten", 0), ("dense", 3)]
    assert coverage["sparsity_prunable"] == 0.75 and coverage["sparsity_total"] == 0.5
    counts = weight_counts([kernel, np.array([1.0, 0.0])], [kernel])
    assert counts == {"param_count": 6, "prunable_param_count": 4, "nonzero_params": 2, "measured_sparsity": 0.75}


def test_a_short_last_batch_weighs_what_it_holds() -> None:
    recovery = BatchMetricRecovery()
    # Batches of 4, 4 and 2 with losses 1, 2 and 4: running means 1, 1.5, 2.
    values = [
        recovery.batch_values(i, {"loss": mean}, seen)["loss"]
        for i, (mean, seen) in enumerate([(1, 4), (1.5, 8), (2, 10)])
    ]
    assert values == pytest.approx([1.0, 2.0, 4.0])
