"""Export formats, the file each is stored as, and the two measures of a file both processes take.

The worker writes these files and the API serves them; neither needs the other to know their names.
"""

from __future__ import annotations

import hashlib
import tempfile
import zipfile
from pathlib import Path

# Model downloads (GET /api/runs/{id}/model?format=...): format -> file extension.
EXPORT_FORMATS: dict[str, str] = {
    "keras": ".keras",
    "h5": ".h5",
    "saved_model": ".zip",
    "tflite": ".tflite",
    "tflite_int8": ".tflite",
    # The compress stages (the run spec's `compress`): one file per stage, and two TFLite references.
    "clustered_h5": ".h5",
    "qat_h5": ".h5",
    "tflite_int8_compressed": ".tflite",
    "tflite_int8_pruned": ".tflite",
    "tflite_sparse": ".tflite",
}
# Files that describe a run's model but are not one: the mask pictures and the export manifest.
RUN_FILE_FORMATS: dict[str, str] = {"masks": ".npz", "manifest": ".json", "rewind": ".npz"}
# The file name of every artifact format inside its attempt's folder.
ARTIFACT_FILE_NAMES: dict[str, str] = {
    "keras": "model.keras",
    "h5": "model.h5",
    "saved_model": "saved_model.zip",
    "tflite": "model.tflite",
    "tflite_int8": "model_int8.tflite",
    "clustered_h5": "model_clustered.h5",  # weight clustering, stripped: each kernel holds <= k values
    "qat_h5": "model_qat.h5",  # quantization-aware model (load inside tfmot's quantize_scope)
    "tflite_int8_compressed": "model_int8_compressed.tflite",  # full integer, from the last compress stage
    "tflite_int8_pruned": "model_int8_pruned.tflite",  # full integer, from the plain pruned model (reference)
    "tflite_sparse": "model_sparse.tflite",  # float, weights stored sparse (EXPERIMENTAL_SPARSITY)
    "masks": "masks.npz",
    "manifest": "manifest.json",
    "rewind": "rewind.npz",  # lottery_ticket: the weights rewound to, and the final masks
}


def export_sizes(exports: dict[str, Path], prefix: str = "") -> dict[str, int]:
    """`<prefix><format>_size_bytes` and `<prefix><format>_zip_bytes` for every exported model file."""
    sizes = {}
    for file_format, path in exports.items():
        if file_format not in EXPORT_FORMATS:
            continue
        sizes[f"{prefix}{file_format}_size_bytes"] = Path(path).stat().st_size
        sizes[f"{prefix}{file_format}_zip_bytes"] = zipped_size(path)
    return sizes


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def zipped_size(path: Path, arcname: str | None = None) -> int:
    """Size of the file alone in a ZIP_DEFLATED archive, as the tfmot tutorials measure it."""
    with tempfile.TemporaryFile() as buffer:
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.write(path, arcname=arcname or path.name)
        return buffer.tell()
