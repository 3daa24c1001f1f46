"""A run's mask snapshots (the worker's masks.npz), listed per layer and drawn as PNG pictures.

masks.npz holds one uint8 array per (layer, pruning step), named `<layer>@<step>`, each cell the
kept fraction of its weights times 255. Pictures are addressed by layer index and step, never by
a name taken from the request; they are drawn black where weights remain.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from prunelab.core.errors import ArtifactNotFound
from prunelab.server.artifacts.service import open_checked
from prunelab.server.artifacts.storage import ArtifactStore
from prunelab.server.models import Run
from prunelab.server.runs.mask_png import grayscale_png
from prunelab.server.runs.schemas import MaskEventOut, MaskLayerOut, MasksOut


@contextmanager
def _pictures(store: ArtifactStore, run: Run) -> Iterator[np.lib.npyio.NpzFile | None]:
    artifact = next((a for a in run.artifacts if a.format == "masks"), None)
    if artifact is None:
        yield None
        return
    handle = open_checked(store, artifact, f"the mask snapshots of run {run.id}")
    with handle, np.load(handle, allow_pickle=False) as archive:
        yield archive


def _layers(names: list[str]) -> dict[str, list[int]]:
    """Layer name -> its snapshot steps in order, layers in the order they first appear."""
    layers: dict[str, list[int]] = {}
    for name in names:
        layer, _, step = name.rpartition("@")
        if layer and step.isdigit():
            layers.setdefault(layer, []).append(int(step))
    return {layer: sorted(steps) for layer, steps in layers.items()}


def list_masks(store: ArtifactStore, run: Run) -> MasksOut:
    """Every layer with a snapshot per pruning event, each with the URL of its picture."""
    with _pictures(store, run) as archive:
        if archive is None:
            return MasksOut(layers=[])
        layers = _layers(list(archive.files))
        return MasksOut(
            layers=[
                MaskLayerOut(
                    name=layer,
                    shape=list(archive[f"{layer}@{steps[0]}"].shape),
                    events=[
                        MaskEventOut(step=step, url=f"/api/runs/{run.id}/masks/{index}/{step}.png") for step in steps
                    ],
                )
                for index, (layer, steps) in enumerate(layers.items())
            ]
        )


def mask_png(store: ArtifactStore, run: Run, layer_index: int, step: int) -> bytes:
    """The picture of one layer's mask at one pruning step: black where weights remain."""
    with _pictures(store, run) as archive:
        layers = list(_layers(list(archive.files)).items()) if archive is not None else []
        if layer_index >= len(layers) or step not in layers[layer_index][1]:
            raise ArtifactNotFound(f"run {run.id} has no mask snapshot of layer {layer_index} at step {step}")
        assert archive is not None
        kept = archive[f"{layers[layer_index][0]}@{step}"]
        return grayscale_png(np.subtract(255, kept, dtype=np.int16).astype(np.uint8))
