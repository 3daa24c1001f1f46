"""Check an uploaded `.npz` data set with numpy alone: never pickle, never TensorFlow.

`allow_pickle=False` makes numpy refuse object arrays, which would otherwise unpickle
(and so run) whatever the file holds.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from prunelab.server.uploads.archives import UploadRejected, check_archive, open_zip

REQUIRED_ARRAYS = ("x_train", "y_train", "x_test", "y_test")
MAX_CLASSES = 1000
MAX_MEMBERS = 16
MAX_UNCOMPRESSED_BYTES = 4 << 30


def _load_arrays(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [name for name in REQUIRED_ARRAYS if name not in archive.files]
            if missing:
                raise UploadRejected(
                    f"the .npz must hold arrays {', '.join(REQUIRED_ARRAYS)}; missing {', '.join(missing)}"
                )
            return {name: archive[name] for name in REQUIRED_ARRAYS}
    except UploadRejected:
        raise
    except ValueError as error:
        # numpy's answer to an object array under allow_pickle=False
        raise UploadRejected(f"the .npz holds pickled objects, which are refused: {error}") from None
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise UploadRejected(f"unreadable .npz: {error}") from None


def _check_images(name: str, images: np.ndarray) -> None:
    if images.dtype.kind not in "uif" or images.dtype.kind == "b":
        raise UploadRejected(f"{name} must be numeric, not {images.dtype}")
    if images.ndim not in (3, 4):
        raise UploadRejected(f"{name} must have shape (N, H, W) or (N, H, W, C), not {images.shape}")
    if images.dtype.kind == "f" and not np.isfinite(images).all():
        raise UploadRejected(f"{name} holds NaN or infinite values")


def _check_labels(name: str, labels: np.ndarray, count: int) -> None:
    if labels.dtype.kind not in "iu":
        raise UploadRejected(f"{name} must hold integer class labels, not {labels.dtype}")
    if labels.ndim != 1 or labels.shape[0] != count:
        raise UploadRejected(f"{name} must have shape ({count},) to match its images, not {labels.shape}")
    if count and (labels.min() < 0 or labels.max() >= MAX_CLASSES):
        raise UploadRejected(f"{name} labels must be in [0, {MAX_CLASSES})")


def inspect_npz(path: Path) -> dict[str, Any]:
    """Check an uploaded .npz data set; returns its metadata or raises UploadRejected with the reason."""
    with open_zip(path, ".npz") as archive:
        check_archive(archive, kind=".npz", max_members=MAX_MEMBERS, max_total_bytes=MAX_UNCOMPRESSED_BYTES)
    arrays = _load_arrays(path)
    x_train, y_train, x_test, y_test = (arrays[name] for name in REQUIRED_ARRAYS)
    _check_images("x_train", x_train)
    _check_images("x_test", x_test)
    if x_train.shape[1:] != x_test.shape[1:]:
        raise UploadRejected(
            f"x_train and x_test must have the same image shape, not {x_train.shape[1:]} and {x_test.shape[1:]}"
        )
    if x_train.shape[0] == 0:
        raise UploadRejected("x_train holds no examples")
    _check_labels("y_train", y_train, x_train.shape[0])
    _check_labels("y_test", y_test, x_test.shape[0])
    num_classes = int(max(y_train.max(initial=0), y_test.max(initial=0))) + 1
    return {
        "train_examples": int(x_train.shape[0]),
        "test_examples": int(x_test.shape[0]),
        "input_shape": [int(size) for size in x_train.shape[1:]],
        "num_classes": num_classes,
        "dtype": str(x_train.dtype),
    }
