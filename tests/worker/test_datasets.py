"""Datasets load with the catalog's shapes, from scikit-learn or the shared .npz files."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from prunelab.core.catalog import DATASETS
from prunelab.worker.training import datasets
from prunelab.worker.training.datasets import load_dataset
from prunelab.worker.training.tf import keras
from tests.worker.conftest import DATA_DIR


def _assert_matches_catalog(dataset: datasets.Dataset) -> None:
    info = dataset.info
    assert dataset.x_train.shape == (info.train_examples, *info.input_shape)
    assert dataset.x_test.shape == (info.test_examples, *info.input_shape)
    assert dataset.y_train.shape == (info.train_examples,)
    assert dataset.y_test.shape == (info.test_examples,)
    for images in (dataset.x_train, dataset.x_test):
        assert images.dtype == np.float32
        assert images.min() == 0.0 and images.max() == 1.0
    for labels in (dataset.y_train, dataset.y_test):
        assert np.issubdtype(labels.dtype, np.integer)
        assert set(np.unique(labels)) == set(range(info.num_classes))


def test_loaders_cover_exactly_the_catalog() -> None:
    assert datasets.dataset_names() == sorted(DATASETS)


def test_digits_matches_the_catalog_and_splits_the_same_every_time() -> None:
    first = load_dataset("digits", None)
    _assert_matches_catalog(first)
    second = load_dataset("digits", None)
    np.testing.assert_array_equal(first.y_test, second.y_test)
    np.testing.assert_array_equal(first.x_train, second.x_train)


def test_mnist_from_the_shared_folder_matches_the_catalog() -> None:
    mnist = load_dataset("mnist", DATA_DIR)
    _assert_matches_catalog(mnist)


def test_missing_file_is_downloaded_and_saved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    info = DATASETS["mnist"]
    rng = np.random.default_rng(0)
    fake = (
        rng.integers(0, 256, size=(info.train_examples, 28, 28), dtype=np.uint8),
        np.arange(info.train_examples, dtype=np.uint8) % 10,
        rng.integers(0, 256, size=(info.test_examples, 28, 28), dtype=np.uint8),
        np.arange(info.test_examples, dtype=np.uint8) % 10,
    )
    monkeypatch.setattr(keras.datasets.mnist, "load_data", lambda: ((fake[0], fake[1]), (fake[2], fake[3])))
    data_dir = tmp_path / "not-yet"
    downloaded = load_dataset("mnist", data_dir)
    np.testing.assert_array_equal(downloaded.y_train, fake[1])
    assert [path.name for path in data_dir.iterdir()] == ["mnist.npz"]

    def offline():
        raise AssertionError("the saved file should have been read")

    monkeypatch.setattr(keras.datasets.mnist, "load_data", offline)
    np.testing.assert_array_equal(load_dataset("mnist", data_dir).x_test, downloaded.x_test)


def test_fashion_mnist_from_the_shared_folder_matches_the_catalog() -> None:
    _assert_matches_catalog(load_dataset("fashion_mnist", DATA_DIR))


def _small_cifar10(monkeypatch: pytest.MonkeyPatch) -> tuple[np.ndarray, ...]:
    """A 40/10-image cifar10 in Keras's layout: (N, 32, 32, 3) uint8 images, (N, 1) uint8 labels."""
    small = dataclasses.replace(DATASETS["cifar10"], train_examples=40, test_examples=10)
    monkeypatch.setitem(DATASETS, "cifar10", small)
    rng = np.random.default_rng(0)
    return (
        rng.integers(0, 256, size=(40, 32, 32, 3), dtype=np.uint8),
        (np.arange(40, dtype=np.uint8) % 10)[:, np.newaxis],
        rng.integers(0, 256, size=(10, 32, 32, 3), dtype=np.uint8),
        (np.arange(10, dtype=np.uint8) % 10)[:, np.newaxis],
    )


def test_cifar10_is_downloaded_through_keras_then_read_from_the_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    x_train, y_train, x_test, y_test = _small_cifar10(monkeypatch)
    monkeypatch.setattr(keras.datasets.cifar10, "load_data", lambda: ((x_train, y_train), (x_test, y_test)))
    downloaded = load_dataset("cifar10", tmp_path)
    assert downloaded.x_train.shape == (40, 32, 32, 3) and downloaded.y_train.shape == (40,)
    np.testing.assert_array_equal(downloaded.x_test, x_test.astype(np.float32) / 255)
    assert [path.name for path in tmp_path.iterdir()] == ["cifar10.npz"]
    monkeypatch.setattr(keras.datasets.cifar10, "load_data", lambda: pytest.fail("should read the saved file"))
    np.testing.assert_array_equal(load_dataset("cifar10", tmp_path).y_train, y_train[:, 0])


def test_a_cifar10_file_placed_in_the_data_dir_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    x_train, y_train, x_test, y_test = _small_cifar10(monkeypatch)
    np.savez(tmp_path / "cifar10.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    monkeypatch.setattr(keras.datasets.cifar10, "load_data", lambda: pytest.fail("no download when cached"))
    _assert_matches_catalog(load_dataset("cifar10", tmp_path))


def test_wrong_shapes_are_a_value_error(tmp_path: Path) -> None:
    small = np.zeros((5, 28, 28), dtype=np.uint8)
    labels = np.zeros(5, dtype=np.uint8)
    np.savez(tmp_path / "mnist.npz", x_train=small, y_train=labels, x_test=small, y_test=labels)
    with pytest.raises(ValueError, match=r"x_train has shape \(5, 28, 28, 1\), the catalog expects"):
        load_dataset("mnist", tmp_path)


def test_unknown_dataset_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unknown dataset 'cifar'"):
        load_dataset("cifar", None)
