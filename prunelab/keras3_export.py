"""Files of a stripped Keras 3 model: `.keras`, and TFLite (LiteRT) float and int8 through Keras 3's own export.

Keras 3 exports LiteRT on the TensorFlow backend only, so on any other backend the model is saved as
`.keras` and converted in a child process whose Keras runs on TensorFlow (`python -m
prunelab.keras3_export MODEL.keras OUT.tflite [--int8]`). int8 is dynamic-range quantization
(`tf.lite.Optimize.DEFAULT`, no representative data), as the tfmot runs' `tflite_int8`.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

FILE_NAMES = {"keras": "model.keras", "tflite": "model.tflite", "tflite_int8": "model_int8.tflite"}
EXPORTS = tuple(FILE_NAMES)
CONVERSION_TIMEOUT_S = 600


def save(model: Any, export_format: str, folder: Path) -> Path:
    """Write `model` (a Keras 3 model, uncompiled: `Pruner.strip()` gives one) in `export_format` into `folder`."""
    if export_format not in FILE_NAMES:
        raise ValueError(f"export format {export_format!r} is not known for Keras 3; choose from {', '.join(EXPORTS)}")
    import keras

    path = folder / FILE_NAMES[export_format]
    if export_format == "keras":
        model.save(path)
    elif keras.backend.backend() == "tensorflow":
        export_litert(model, path, int8=export_format == "tflite_int8")
    else:
        with tempfile.TemporaryDirectory(prefix="prunelab-export-") as scratch:
            source = Path(scratch) / "model.keras"
            model.save(source)
            convert_in_tensorflow(source, path, int8=export_format == "tflite_int8")
    return path


def export_litert(model: Any, path: Path, *, int8: bool) -> None:
    """Keras 3's LiteRT export of `model` (TensorFlow backend), float or dynamic-range int8."""
    import tensorflow as tf

    options = {"optimizations": [tf.lite.Optimize.DEFAULT]} if int8 else {}
    model.export(str(path), format="litert", verbose=False, **options)


def convert_in_tensorflow(source: Path, path: Path, *, int8: bool) -> None:
    """Convert a saved `.keras` file to TFLite in a child process whose Keras runs on TensorFlow."""
    env = {key: value for key, value in os.environ.items() if key != "TF_USE_LEGACY_KERAS"}
    env["KERAS_BACKEND"] = "tensorflow"
    command = [sys.executable, "-m", "prunelab.keras3_export", str(source), str(path), *(["--int8"] if int8 else [])]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=CONVERSION_TIMEOUT_S)
    if result.returncode != 0 or not path.is_file():
        raise RuntimeError(f"converting {source.name} to TFLite on TensorFlow failed: {result.stderr[-2000:]}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Convert a Keras 3 .keras file to TFLite on TensorFlow.")
    parser.add_argument("source", type=Path)
    parser.add_argument("target", type=Path)
    parser.add_argument("--int8", action="store_true")
    args = parser.parse_args(argv)
    import keras

    if keras.backend.backend() != "tensorflow":
        raise SystemExit("set KERAS_BACKEND=tensorflow: Keras 3 exports LiteRT on TensorFlow only")
    export_litert(keras.saving.load_model(args.source, compile=False), args.target, int8=args.int8)


if __name__ == "__main__":
    main()
