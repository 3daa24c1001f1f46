"""Builders of valid and hostile uploads, made without TensorFlow (the API never loads a model)."""

from __future__ import annotations

import io
import json
import zipfile
from functools import lru_cache
from typing import Any

import numpy as np


def dense_config(extra_layers: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A tf-keras Sequential config.json: Flatten then Dense, as `model.save("m.keras")` writes it."""
    layers: list[dict[str, Any]] = [
        {"module": "keras.layers", "class_name": "InputLayer", "config": {"batch_input_shape": [None, 8, 8, 1]}},
        {"module": "keras.layers", "class_name": "Flatten", "config": {"name": "flatten"}, "registered_name": None},
        {
            "module": "keras.layers",
            "class_name": "Dense",
            "config": {
                "name": "dense",
                "units": 10,
                "kernel_initializer": {
                    "module": "keras.initializers",
                    "class_name": "GlorotUniform",
                    "config": {"seed": None},
                    "registered_name": None,
                },
            },
            "registered_name": None,
        },
    ]
    return {
        "module": "keras",
        "class_name": "Sequential",
        "config": {"name": "sequential", "layers": layers + (extra_layers or [])},
        "registered_name": None,
    }


def keras_archive(
    config: object | None = None,
    members: dict[str, bytes] | None = None,
    *,
    raw_config: bytes | None = None,
    keras_version: object = "2.21.0",  # what tf-keras 2.21 writes; Keras 3 writes its own, 3.x
) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("metadata.json", json.dumps({"keras_version": keras_version}))
        archive.writestr("config.json", raw_config if raw_config is not None else json.dumps(config or dense_config()))
        archive.writestr("model.weights.h5", b"\x89HDF\r\n\x1a\n" + b"\0" * 64)
        for name, data in (members or {}).items():
            archive.writestr(name, data)
    return buffer.getvalue()


def zip_with_member(name: str) -> bytes:
    return keras_archive(members={name: b"owned"})


@lru_cache
def decompression_bomb() -> bytes:
    """A few MB of zeros deflate to kilobytes; the directory then claims far more than the limit."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("metadata.json", "{}")
        archive.writestr("config.json", json.dumps(dense_config()))
        archive.writestr("model.weights.h5", b"\0" * 1024)
        chunk = b"\0" * (64 << 20)
        for index in range(20):  # 20 x 64 MiB = 1.25 GiB unpacked
            archive.writestr(f"assets/zeros{index}.bin", chunk)
    return buffer.getvalue()


def lambda_config() -> dict[str, Any]:
    return dense_config(
        [
            {
                "module": "keras.layers",
                "class_name": "Lambda",
                "config": {"name": "lambda", "function": ["4wEAAAAAAAAA", None, None], "function_type": "lambda"},
                "registered_name": None,
            }
        ]
    )


def unknown_module_config() -> dict[str, Any]:
    return dense_config(
        [{"module": "os", "class_name": "system", "config": {"command": "id"}, "registered_name": None}]
    )


def custom_object_config() -> dict[str, Any]:
    return dense_config(
        [{"module": "keras.layers", "class_name": "Dense", "config": {}, "registered_name": "evil>Dense"}]
    )


def npz_bytes(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def valid_npz() -> bytes:
    rng = np.random.default_rng(0)
    return npz_bytes(
        x_train=rng.random((20, 8, 8), dtype=np.float32),
        y_train=rng.integers(0, 10, 20),
        x_test=rng.random((5, 8, 8), dtype=np.float32),
        y_test=rng.integers(0, 10, 5),
    )


class Payload:
    """Unpickling this runs a command: what a pickle-bearing .npz would do with allow_pickle=True."""

    def __reduce__(self):  # type: ignore[no-untyped-def]
        import os

        return (os.system, ("touch /tmp/prunelab-pwned",))


def pickled_npz() -> bytes:
    objects = np.empty(1, dtype=object)
    objects[0] = Payload()
    return npz_bytes(
        x_train=objects, y_train=np.zeros(1, dtype=np.int64), x_test=objects, y_test=np.zeros(1, dtype=np.int64)
    )
