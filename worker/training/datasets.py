"""Load the datasets named in `core.catalog.DATASETS` as float32 images in [0, 1]."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from prunelab.core.catalog import DATASETS, DatasetInfo
from prunelab.core.plans import RunPlan, split_sizes
from prunelab.core.specs import RunSpec

# digits has no official split: a fixed permutation makes it the same everywhere.
_DIGITS_SPLIT_SEED = 0

RawArrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


@dataclass(frozen=True)
class Dataset:
    """Train and test arrays: images (N, H, W, C) float32 in [0, 1], labels (N,) int64."""

    info: DatasetInfo
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def _digits(info: DatasetInfo, data_dir: Path | None) -> Dataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = (bunch.images / 16.0).astype(np.float32)[..., np.newaxis]
    labels = bunch.target.astype(np.int64)
    order = np.random.RandomState(_DIGITS_SPLIT_SEED).permutation(len(labels))
    train, test = order[: info.train_examples], order[info.train_examples :]
    return _checked(info, images[train], labels[train], images[test], labels[test], source="scikit-learn")


def _keras_download(name: str) -> Callable[[], RawArrays]:
    """Download through `keras.datasets.<name>.load_data()` (Keras caches it in ~/.keras/datasets)."""

    def download() -> RawArrays:
        from prunelab.worker.training.tf import keras

        (x_train, y_train), (x_test, y_test) = getattr(keras.datasets, name).load_data()
        return x_train, y_train, x_test, y_test

    return download


def _npz_loader(download: Callable[[], RawArrays]) -> Callable[[DatasetInfo, Path | None], Dataset]:
    """A loader for a uint8 .npz in data_dir, fetched through `download` when it is missing."""

    def load(info: DatasetInfo, data_dir: Path | None) -> Dataset:
        assert info.file_name is not None, f"dataset {info.name!r} has no file_name in the catalog"
        path = Path(data_dir) / info.file_name if data_dir is not None else None
        if path is not None and path.is_file():
            with np.load(path, allow_pickle=False) as archive:
                missing = {"x_train", "y_train", "x_test", "y_test"} - set(archive.files)
                if missing:
                    raise ValueError(f"{path} lacks the arrays {sorted(missing)}")
                arrays = (archive["x_train"], archive["y_train"], archive["x_test"], archive["y_test"])
            source = str(path)
        else:
            arrays = download()
            if path is not None:
                _save_npz(path, arrays)
            source = f"download of {info.name}"
        x_train, y_train, x_test, y_test = arrays
        return _checked(
            info,
            _scaled_images(x_train),
            y_train.astype(np.int64).reshape(-1),
            _scaled_images(x_test),
            y_test.astype(np.int64).reshape(-1),
            source=source,
        )

    return load


def _scaled_images(pixels: np.ndarray) -> np.ndarray:
    """uint8 pixels as float32 in [0, 1]; grey images (N, H, W) get their channel axis."""
    images = pixels.astype(np.float32) / np.float32(255.0)
    return images[..., np.newaxis] if images.ndim == 3 else images


def _save_npz(path: Path, arrays: RawArrays) -> None:
    # Written to a temporary file and renamed, so a concurrent reader never sees half a file.
    path.parent.mkdir(parents=True, exist_ok=True)
    x_train, y_train, x_test, y_test = arrays
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            np.savez_compressed(file, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _checked(
    info: DatasetInfo,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    *,
    source: str,
) -> Dataset:
    expected = {
        "x_train": (info.train_examples, *info.input_shape),
        "y_train": (info.train_examples,),
        "x_test": (info.test_examples, *info.input_shape),
        "y_test": (info.test_examples,),
    }
    actual = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
    for key, shape in expected.items():
        if actual[key].shape != shape:
            raise ValueError(
                f"dataset {info.name!r} from {source}: {key} has shape {actual[key].shape}, the catalog expects {shape}"
            )
    for key in ("y_train", "y_test"):
        labels = actual[key]
        if labels.size and not (labels.min() >= 0 and labels.max() < info.num_classes):
            raise ValueError(f"dataset {info.name!r} from {source}: {key} holds labels outside [0, {info.num_classes})")
    return Dataset(info=info, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)


_LOADERS: dict[str, Callable[[DatasetInfo, Path | None], Dataset]] = {
    "digits": _digits,
    "mnist": _npz_loader(_keras_download("mnist")),
    "fashion_mnist": _npz_loader(_keras_download("fashion_mnist")),
    "cifar10": _npz_loader(_keras_download("cifar10")),
}


def load_dataset(name: str, data_dir: Path | None) -> Dataset:
    """Load a catalog dataset; a file-backed one is read from (or downloaded into) data_dir."""
    if name not in DATASETS or name not in _LOADERS:
        raise ValueError(f"unknown dataset {name!r}; choose one of: {', '.join(sorted(DATASETS))}")
    return _LOADERS[name](DATASETS[name], data_dir)


def dataset_names() -> list[str]:
    """Datasets this module can load (a test checks they are exactly the catalog's)."""
    return sorted(_LOADERS)


def split_validation(
    spec: RunSpec, plan: RunPlan, dataset: Dataset
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray] | None]:
    """Train on the first plan.train_examples examples and validate on the rest, as Keras would."""
    train_count, validation_count = split_sizes(dataset.info, spec.validation_split)
    if (train_count, validation_count) != (plan.train_examples, plan.validation_examples):
        raise ValueError(
            f"the plan splits {plan.train_examples}/{plan.validation_examples} examples, "
            f"the spec {train_count}/{validation_count}: resolve the plan from this spec"
        )
    train = (dataset.x_train[:train_count], dataset.y_train[:train_count])
    validation = (dataset.x_train[train_count:], dataset.y_train[train_count:]) if validation_count else None
    return train, validation
