"""Is a body an MP4? The ISO base media format opens with an `ftyp` box: a 32-bit size, `ftyp`, a major brand."""

from __future__ import annotations

import struct

HEAD_BYTES = 16  # size (4) + "ftyp" (4) + major brand (4) + minor version (4)
QUICKTIME_BRAND = b"qt  "


def ftyp_brand(head: bytes) -> bytes | None:
    """The major brand when ``head`` (the body's first bytes) starts with a well-formed ftyp box, else None."""
    if len(head) < HEAD_BYTES or head[4:8] != b"ftyp":
        return None
    (size,) = struct.unpack(">I", head[:4])
    if size != 1 and size < HEAD_BYTES:  # 1 means a 64-bit size follows; else the box must hold brand + version
        return None
    brand = head[8:12]
    return brand if all(32 <= b < 127 for b in brand) else None


def content_type_of(brand: bytes) -> str:
    return "video/quicktime" if brand == QUICKTIME_BRAND else "video/mp4"
