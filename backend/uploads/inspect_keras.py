"""Check an uploaded `.keras` archive without loading it: only the zip directory and config.json are read.

Keras model files can run code on load, `safe_mode` notwithstanding (CVE-2024-3660,
CVE-2025-1550, ...). So an archive is accepted only when its members are few, small
and plainly named, and every object its config.json names is a Keras built-in from a
Keras module: no Lambda, no custom or registered class, no other module. The worker
loads an accepted file with `safe_mode=True` after checking it again
(`worker/training/uploaded_models.py`); the API never loads a model.
"""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path
from typing import Any

from prunelab.server.uploads.archives import UploadRejected, check_archive, open_zip

MAX_MEMBERS = 64
MAX_UNCOMPRESSED_BYTES = 1 << 30  # 1 GiB: above any model PruneLab prunes, below a decompression bomb
MAX_CONFIG_BYTES = 16 << 20
MAX_METADATA_BYTES = 64 << 10
REQUIRED_MEMBERS = ("config.json", "model.weights.h5")
# metadata.json's keras_version: tf-keras writes its own (2.x), Keras 3 its own (3.x).
KERAS_VERSION = re.compile(r"\d{1,4}(\.\d{1,6}){0,3}([.+-]?[A-Za-z0-9.+-]{0,24})?")

ALLOWED_LAYERS = frozenset(
    {
        "Activation",
        "ActivityRegularization",
        "Add",
        "AlphaDropout",
        "Average",
        "AveragePooling1D",
        "AveragePooling2D",
        "AveragePooling3D",
        "BatchNormalization",
        "Bidirectional",
        "CategoryEncoding",
        "Concatenate",
        "Conv1D",
        "Conv1DTranspose",
        "Conv2D",
        "Conv2DTranspose",
        "Conv3D",
        "Conv3DTranspose",
        "Cropping1D",
        "Cropping2D",
        "Cropping3D",
        "Dense",
        "DepthwiseConv1D",
        "DepthwiseConv2D",
        "Dot",
        "Dropout",
        "ELU",
        "Embedding",
        "Flatten",
        "GaussianDropout",
        "GaussianNoise",
        "GlobalAveragePooling1D",
        "GlobalAveragePooling2D",
        "GlobalAveragePooling3D",
        "GlobalMaxPooling1D",
        "GlobalMaxPooling2D",
        "GlobalMaxPooling3D",
        "GRU",
        "InputLayer",
        "LayerNormalization",
        "LeakyReLU",
        "LSTM",
        "Masking",
        "Maximum",
        "MaxPooling1D",
        "MaxPooling2D",
        "MaxPooling3D",
        "Minimum",
        "MultiHeadAttention",
        "Multiply",
        "Normalization",
        "Permute",
        "PReLU",
        "ReLU",
        "RepeatVector",
        "Rescaling",
        "Reshape",
        "SeparableConv1D",
        "SeparableConv2D",
        "SimpleRNN",
        "Softmax",
        "SpatialDropout1D",
        "SpatialDropout2D",
        "SpatialDropout3D",
        "Subtract",
        "ThresholdedReLU",
        "TimeDistributed",
        "UnitNormalization",
        "UpSampling1D",
        "UpSampling2D",
        "UpSampling3D",
        "ZeroPadding1D",
        "ZeroPadding2D",
        "ZeroPadding3D",
    }
)
ALLOWED_MODELS = frozenset({"Sequential", "Functional", "Model"})
# Objects a built-in layer's config holds: initializers, regularizers, constraints, dtype policies, optimizers.
ALLOWED_SUPPORT_OBJECTS = frozenset(
    {
        "Constant",
        "GlorotNormal",
        "GlorotUniform",
        "HeNormal",
        "HeUniform",
        "Identity",
        "LecunNormal",
        "LecunUniform",
        "Ones",
        "Orthogonal",
        "RandomNormal",
        "RandomUniform",
        "TruncatedNormal",
        "VarianceScaling",
        "Zeros",
        "L1",
        "L2",
        "L1L2",
        "OrthogonalRegularizer",
        "MaxNorm",
        "MinMaxNorm",
        "NonNeg",
        "UnitNorm",
        "RadialConstraint",
        "DTypePolicy",
        "Policy",
        "Adadelta",
        "Adagrad",
        "Adam",
        "AdamW",
        "Adamax",
        "Ftrl",
        "Nadam",
        "RMSprop",
        "SGD",
        "BinaryCrossentropy",
        "CategoricalCrossentropy",
        "Huber",
        "MeanAbsoluteError",
        "MeanSquaredError",
        "SparseCategoricalCrossentropy",
        "Accuracy",
        "BinaryAccuracy",
        "CategoricalAccuracy",
        "SparseCategoricalAccuracy",
        "__keras_tensor__",  # Keras 3 functional configs: a reference between layers, plain data
    }
)
ALLOWED_CLASSES = ALLOWED_LAYERS | ALLOWED_MODELS | ALLOWED_SUPPORT_OBJECTS
ALLOWED_MODULE_ROOTS = ("keras", "tf_keras")


def check_keras_archive(archive: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    """Members, size and names of the archive, before anything in it is read."""
    members = check_archive(archive, kind=".keras", max_members=MAX_MEMBERS, max_total_bytes=MAX_UNCOMPRESSED_BYTES)
    names = {member.filename for member in members}
    missing = [name for name in REQUIRED_MEMBERS if name not in names]
    if missing:
        raise UploadRejected(f"not a Keras v3 .keras archive: missing {', '.join(missing)}")
    return members


def _read_capped(archive: zipfile.ZipFile, name: str, limit: int) -> bytes:
    # The directory's sizes can lie; never inflate more than the limit, whatever it claims.
    with archive.open(name) as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise UploadRejected(f"{name} is larger than {limit} bytes")
    return data


def _module_allowed(module: object) -> bool:
    if module is None:
        return True
    return isinstance(module, str) and any(
        module == root or module.startswith(f"{root}.") for root in ALLOWED_MODULE_ROOTS
    )


def _check_object(node: dict[str, Any], where: str) -> None:
    class_name = node.get("class_name")
    if not isinstance(class_name, str):
        raise UploadRejected(f"config.json: {where}: class_name must be a string")
    if class_name == "Lambda":
        raise UploadRejected(f"config.json: {where}: Lambda layers run arbitrary code and are refused")
    if not _module_allowed(node.get("module")):
        raise UploadRejected(
            f"config.json: {where}: module {node.get('module')!r} of {class_name!r} is not a Keras module"
        )
    registered = node.get("registered_name")
    if registered not in (None, class_name):
        raise UploadRejected(f"config.json: {where}: custom object {registered!r} is refused (built-in Keras only)")
    if class_name not in ALLOWED_CLASSES:
        raise UploadRejected(f"config.json: {where}: {class_name!r} is not a built-in Keras layer PruneLab accepts")


def check_config(config: object, where: str = "model") -> list[str]:
    """Every object in the config is an allowed built-in; returns the layer class names in order."""
    layers: list[str] = []

    def walk(node: object, path: str) -> None:
        if isinstance(node, dict):
            if "class_name" in node:
                _check_object(node, path)
                if node["class_name"] in ALLOWED_LAYERS:
                    layers.append(node["class_name"])
            for key, value in node.items():
                walk(value, f"{path}.{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, f"{path}[{index}]")

    if not isinstance(config, dict) or config.get("class_name") not in ALLOWED_MODELS:
        raise UploadRejected("config.json must describe a Sequential or Functional model")
    walk(config, where)
    return layers


def inspect_keras(path: Path) -> dict[str, Any]:
    """Check an uploaded .keras file; returns its metadata or raises UploadRejected with the reason."""
    try:
        with open_zip(path, ".keras") as archive:
            members = check_keras_archive(archive)
            raw = _read_capped(archive, "config.json", MAX_CONFIG_BYTES)
            metadata = (
                _read_capped(archive, "metadata.json", MAX_METADATA_BYTES)
                if any(member.filename == "metadata.json" for member in members)
                else None
            )
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, OSError, EOFError) as error:
        raise UploadRejected(f"unreadable .keras archive: {error}") from None
    try:
        config = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UploadRejected(f"config.json is not valid JSON: {error}") from None
    layers = check_config(config)
    return {
        "model_class": config["class_name"],
        "layers": layers,
        "layer_count": len(layers),
        "members": len(members),
        "uncompressed_bytes": sum(member.file_size for member in members),
        "keras_version": keras_version(metadata),
    }


def keras_version(metadata: bytes | None) -> str | None:
    """The Keras version metadata.json says saved the model (tf-keras: 2.x, Keras 3: 3.x); None if it does not say."""
    if metadata is None:
        return None
    try:
        version = json.loads(metadata).get("keras_version")
    except (UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        raise UploadRejected("metadata.json is not a JSON object") from None
    if version is None:
        return None
    if not isinstance(version, str) or not KERAS_VERSION.fullmatch(version):
        raise UploadRejected(f"metadata.json: keras_version {str(version)[:40]!r} is not a version number")
    return version


def keras_major(version: str | None) -> int | None:
    """The major version of `keras_version()`'s answer, None when unknown."""
    return int(version.split(".")[0]) if version else None
