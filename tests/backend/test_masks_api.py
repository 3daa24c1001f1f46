"""Mask snapshots: listed per layer and pruning event, served as PNGs black where weights remain."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient

from prunelab.server.artifacts.service import get_store, set_stored
from prunelab.server.artifacts.storage import artifact_key
from prunelab.server.db import session_scope
from prunelab.server.models import Artifact, Run, RunStatus
from prunelab.server.runs.mask_png import grayscale_png


def decode_png(data: bytes) -> np.ndarray:
    """Decode the 8-bit grayscale, unfiltered PNGs grayscale_png writes."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    position, idat, size = 8, b"", (0, 0)
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        body = data[position + 8 : position + 8 + length]
        (crc,) = struct.unpack(">I", data[position + 8 + length : position + 12 + length])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF
        if kind == b"IHDR":
            size = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        position += 12 + length
    width, height = size
    raw = np.frombuffer(zlib.decompress(idat), dtype=np.uint8).reshape(height, width + 1)
    assert not raw[:, 0].any()  # filter type 0 on every scanline
    return raw[:, 1:]


def test_grayscale_png_round_trips() -> None:
    pixels = np.arange(12 * 7, dtype=np.uint8).reshape(7, 12)
    assert np.array_equal(decode_png(grayscale_png(pixels)), pixels)


def store_masks(settings, run_id: int, pictures: dict[str, np.ndarray]) -> None:  # type: ignore[no-untyped-def]
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **pictures)
    source = Path(settings.home) / "masks.npz"
    source.write_bytes(buffer.getvalue())
    stored = get_store(settings.artifact_dir).put_file(artifact_key(run_id, 1, "masks"), source)
    with session_scope() as session:
        session.add(set_stored(Artifact(run_id=run_id, format="masks"), stored))


def succeeded_run() -> int:
    from prunelab.core.plans import resolve_plan
    from prunelab.core.specs import ConstantSchedule, RunSpec

    spec = RunSpec(epochs=1, schedule=ConstantSchedule(frequency=10))
    with session_scope() as session:
        run = Run(
            name="masked",
            status=RunStatus.SUCCEEDED,
            attempt=1,
            spec=spec.model_dump(mode="json"),
            plan=resolve_plan(spec).model_dump(mode="json"),
        )
        session.add(run)
        session.flush()
        return run.id


def test_masks_are_listed_per_layer_and_drawn_black_where_kept(client: TestClient, settings) -> None:  # type: ignore[no-untyped-def]
    run_id = succeeded_run()
    assert client.get(f"/api/runs/{run_id}/masks").json() == {"layers": []}
    kept_half = np.array([[255, 0], [0, 255]], dtype=np.uint8)
    store_masks(
        settings,
        run_id,
        {"dense@20": kept_half, "dense@10": np.full((2, 2), 255, np.uint8), "logits@10": np.zeros((3, 1), np.uint8)},
    )
    listing = client.get(f"/api/runs/{run_id}/masks").json()
    assert [(layer["name"], layer["shape"]) for layer in listing["layers"]] == [("dense", [2, 2]), ("logits", [3, 1])]
    dense = listing["layers"][0]
    assert [event["step"] for event in dense["events"]] == [10, 20]
    picture = client.get(dense["events"][1]["url"])
    assert picture.headers["content-type"] == "image/png"
    assert np.array_equal(decode_png(picture.content), 255 - kept_half)  # black (0) where weights remain
    assert client.get(f"/api/runs/{run_id}/masks/0/15.png").status_code == 404
    assert client.get(f"/api/runs/{run_id}/masks/7/10.png").status_code == 404
    assert client.get(f"/api/runs/{run_id}/masks/-1/10.png").status_code == 422
