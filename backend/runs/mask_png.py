"""A minimal PNG writer for 8-bit grayscale pictures (mask snapshots), with no imaging library."""

from __future__ import annotations

import struct
import zlib

import numpy as np


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def grayscale_png(pixels: np.ndarray) -> bytes:
    """Encode a 2-D uint8 array (0 black, 255 white) as a PNG."""
    if pixels.ndim != 2 or pixels.dtype != np.uint8:
        raise ValueError("a grayscale PNG needs a 2-D uint8 array")
    height, width = pixels.shape
    # Each scanline starts with filter type 0 (none).
    raw = b"".join(b"\x00" + row.tobytes() for row in pixels)
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(raw, 9)) + _chunk(b"IEND", b"")
    )
