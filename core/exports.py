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
    "masks": "masks.npz",
    "manifest": "manifest.json",
    "rewind": "rewind.npz",  # lottery_ticket: the weights rewound to, and the final masks
}


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
