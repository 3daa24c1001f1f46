"""One chunk's bytes: a series' three columns, lossless, at a few bytes per point.

Each column is transformed so zstd finds the repetition in it, then the three are compressed
as one frame:
- steps (int64) and wall times (float64 bit patterns as uint64) are delta-encoded: steps grow by a
  constant, wall times by a nearly constant amount, so their deltas share their high bytes;
- values are stored as float32 when every value survives the round trip (Keras logs float32), else
  as float64; a NaN is a gap (a non-finite value stored as NULL);
- every column is byte-shuffled (all first bytes, then all second bytes...), as Blosc does.
Decoding gives back exactly the stored numbers, bit for bit.
"""

from __future__ import annotations

import struct

import numpy as np
import zstandard

from prunelab.server.metrics.points import Points

FORMAT_VERSION = 1
ZSTD_LEVEL = 3  # level 3 compresses these columns within a few % of level 19, ten times faster
_HEADER = struct.Struct("<BBI")  # version, bytes per value (4 or 8), point count


def _shuffle(array: np.ndarray) -> bytes:
    return array.view(np.uint8).reshape(array.size, array.itemsize).T.tobytes()


def _unshuffle(raw: bytes | memoryview, dtype: type[np.generic], count: int) -> np.ndarray:
    width = np.dtype(dtype).itemsize
    planes = np.frombuffer(raw, dtype=np.uint8, count=count * width).reshape(width, count)
    return np.ascontiguousarray(planes.T).view(dtype).reshape(count)


def _delta(bits: np.ndarray) -> np.ndarray:
    # uint64 arithmetic wraps, so any sequence (falling wall times of a retried run too) decodes exactly.
    return np.diff(bits, prepend=np.uint64(0))


def encode(points: Points) -> bytes:
    """Compressed bytes of `points` (see the module docstring)."""
    count = len(points)
    with np.errstate(over="ignore"):  # a value beyond float32's range simply stays float64
        as_float32 = points.values.astype(np.float32)
    narrow = bool(np.array_equal(as_float32.astype(np.float64), points.values, equal_nan=True))
    values = as_float32 if narrow else points.values.astype(np.float64)
    body = b"".join(
        (
            _shuffle(_delta(points.steps.astype(np.int64).view(np.uint64))),
            _shuffle(_delta(points.wall_times.astype(np.float64).view(np.uint64))),
            _shuffle(values),
        )
    )
    return _HEADER.pack(FORMAT_VERSION, values.itemsize, count) + zstandard.compress(body, ZSTD_LEVEL)


def decode(payload: bytes) -> Points:
    """The points `encode` was given."""
    version, value_width, count = _HEADER.unpack_from(payload)
    if version != FORMAT_VERSION:
        raise ValueError(f"metric chunk format {version} is not known to this version of PruneLab")
    body = memoryview(zstandard.decompress(payload[_HEADER.size :]))
    steps = np.cumsum(_unshuffle(body[: 8 * count], np.uint64, count), dtype=np.uint64).view(np.int64)
    walls = np.cumsum(_unshuffle(body[8 * count : 16 * count], np.uint64, count), dtype=np.uint64).view(np.float64)
    value_type = np.float32 if value_width == 4 else np.float64
    values = _unshuffle(body[16 * count :], value_type, count).astype(np.float64)
    return Points(steps, values, walls)
