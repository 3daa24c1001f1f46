"""HTTP byte ranges for downloads (RFC 9110 section 14): one range per request, resumable by ETag.

A server may ignore a Range it does not support and send the whole file with 200; several ranges,
another unit or a malformed header get exactly that. A single range starting past the end is 416.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from prunelab.server.errors import RangeNotSatisfiable

SINGLE_RANGE = re.compile(r"bytes=(\d*)-(\d*)", re.ASCII)


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # exclusive

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.end - 1}/{size}"


def strong_etag(sha256: str) -> str:
    """The stored sha256 as a strong entity tag: the same bytes have the same tag whichever store holds them."""
    return f'"{sha256}"'


def requested_range(range_header: str | None, if_range: str | None, etag: str, size: int) -> ByteRange | None:
    """The byte range to send, or None for the whole file."""
    if not range_header:
        return None
    if if_range is not None and if_range.strip() != etag:
        return None  # the client's partial copy is of other bytes: start over with the whole file
    match = SINGLE_RANGE.fullmatch(range_header.strip().replace(" ", ""))
    if match is None:
        return None
    first, last = match.groups()
    if not first:  # a suffix: the last N bytes
        if not last or int(last) == 0 or size == 0:
            raise RangeNotSatisfiable(size)
        return ByteRange(max(0, size - int(last)), size)
    start = int(first)
    if start >= size:
        raise RangeNotSatisfiable(size)
    end = size if not last else min(int(last) + 1, size)
    if end <= start:
        return None  # last before first: invalid, so ignored
    return ByteRange(start, end)
