"""The MP4 a finished render serves: a valid ISO BMFF file built from the render alone (no network, no ffmpeg).

Layout: ``ftyp`` first, then ``moov`` (``mvhd`` carrying the duration, one video ``trak`` whose single sample
spans the whole ``mdat`` payload, and a ``udta/free`` box naming the render and its draft), then ``mdat``.
The container is valid; the samples are not decodable video.

The ``mdat`` payload is a function of the offset, so any byte range is computed without holding the file:
chunk ``k`` (``CHUNK`` bytes) is 16 bytes naming the render, ``k`` as 8 bytes, then a fixed pattern. Every
chunk differs from every other (a reordered or repeated chunk changes the sha256), and a 500 MB file streams
in constant memory.
"""

from __future__ import annotations

import hashlib
import json
import random
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

CHUNK = 64 * 1024
PIECE_CHUNKS = 16  # iter_range yields up to 16 chunks (1 MiB) at a time
SMALL_PAYLOAD = 3072  # the default file is a few KB
MAX_OUTPUT_BYTES = 4_000_000_000  # one 32-bit mdat box and 32-bit sample tables
_PATTERN = random.Random(0x5EED).randbytes(CHUNK)
_EPOCH_1904 = 2082844800  # seconds from 1904-01-01 (MP4 time) to 1970-01-01
_MATRIX = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
TIMESCALE = 1000  # durations in ms


def box(kind: bytes, *payload: bytes) -> bytes:
    body = b"".join(payload)
    return struct.pack(">I", 8 + len(body)) + kind + body


def full_box(kind: bytes, version: int, flags: int, *payload: bytes) -> bytes:
    return box(kind, struct.pack(">I", (version << 24) | flags), *payload)


def draft_duration_ms(draft: Any) -> int:
    """The draft's ``d`` (ms), else the latest segment end, else 0."""
    if not isinstance(draft, dict):
        return 0
    total = draft.get("d")
    if isinstance(total, int | float) and not isinstance(total, bool) and total > 0:
        return int(total)
    ends = [
        int(seg.get("s", 0) or 0) + int(seg.get("d", 0) or 0)
        for track in draft.get("t") or []
        if isinstance(track, dict)
        for seg in track.get("sg") or []
        if isinstance(seg, dict)
    ]
    return max(ends, default=0)


def _size(draft: Any) -> tuple[int, int]:
    meta = draft.get("m") if isinstance(draft, dict) else None
    meta = meta if isinstance(meta, dict) else {}
    width, height = meta.get("width"), meta.get("height")
    if isinstance(width, int) and isinstance(height, int) and 0 < width < 65536 and 0 < height < 65536:
        return width, height
    return 1080, 1920


def _mvhd(when: int, duration: int) -> bytes:
    return full_box(
        b"mvhd", 0, 0,
        struct.pack(">IIII", when, when, TIMESCALE, duration),
        struct.pack(">IH10x", 0x10000, 0x100), _MATRIX, bytes(24), struct.pack(">I", 2),
    )  # fmt: skip


def _stbl(width: int, height: int, duration: int, sample_size: int, data_offset: int) -> bytes:
    compressor = bytes(32)
    avc1 = box(
        b"avc1",
        bytes(6), struct.pack(">H", 1), bytes(16), struct.pack(">HH", width, height),
        struct.pack(">IIIH", 0x480000, 0x480000, 0, 1), compressor, struct.pack(">Hh", 0x18, -1),
    )  # fmt: skip
    return box(
        b"stbl",
        full_box(b"stsd", 0, 0, struct.pack(">I", 1), avc1),
        full_box(b"stts", 0, 0, struct.pack(">III", 1, 1, duration)),
        full_box(b"stsc", 0, 0, struct.pack(">IIII", 1, 1, 1, 1)),
        full_box(b"stsz", 0, 0, struct.pack(">III", 0, 1, sample_size)),
        full_box(b"stco", 0, 0, struct.pack(">II", 1, data_offset)),
    )


def _trak(when: int, duration: int, width: int, height: int, sample_size: int, data_offset: int) -> bytes:
    tkhd = full_box(
        b"tkhd", 0, 3,
        struct.pack(">III4xI8x", when, when, 1, duration), struct.pack(">hhH2x", 0, 0, 0), _MATRIX,
        struct.pack(">II", width << 16, height << 16),
    )  # fmt: skip
    mdhd = full_box(b"mdhd", 0, 0, struct.pack(">IIIIHH", when, when, TIMESCALE, duration, 0x55C4, 0))
    hdlr = full_box(b"hdlr", 0, 0, bytes(4), b"vide", bytes(12), b"VideoHandler\x00")
    dinf = box(b"dinf", full_box(b"dref", 0, 0, struct.pack(">I", 1), full_box(b"url ", 0, 1)))
    vmhd = full_box(b"vmhd", 0, 1, bytes(8))
    minf = box(b"minf", vmhd, dinf, _stbl(width, height, duration, sample_size, data_offset))
    return box(b"trak", tkhd, box(b"mdia", mdhd, hdlr, minf))


@dataclass(frozen=True)
class RenderMedia:
    """One render's file: ``head`` (everything up to the mdat payload) and a payload computed per offset."""

    head: bytes
    payload_size: int
    duration_ms: int
    tag: bytes  # 16 bytes naming the render, at the start of every payload chunk

    @property
    def size(self) -> int:
        return len(self.head) + self.payload_size

    def _chunk(self, k: int) -> bytes:
        length = min(CHUNK, self.payload_size - k * CHUNK)
        return (self.tag + struct.pack(">Q", k) + _PATTERN[24:])[:length]

    def iter_range(self, start: int = 0, stop: int | None = None) -> Iterator[bytes]:
        """Bytes ``[start, stop)`` of the file in pieces of at most ``PIECE_CHUNKS * CHUNK``."""
        stop = self.size if stop is None else min(stop, self.size)
        head_len = len(self.head)
        if start < head_len:
            yield self.head[start : min(stop, head_len)]
            start = head_len
        while start < stop:
            offset = start - head_len
            first, last = offset // CHUNK, min((stop - head_len - 1) // CHUNK, offset // CHUNK + PIECE_CHUNKS - 1)
            piece = b"".join(self._chunk(k) for k in range(first, last + 1))
            piece = piece[offset - first * CHUNK : stop - head_len - first * CHUNK]
            yield piece
            start += len(piece)

    def read(self) -> bytes:
        return b"".join(self.iter_range())

    def sha256(self) -> str:
        digest = hashlib.sha256()
        for piece in self.iter_range():
            digest.update(piece)
        return digest.hexdigest()


def build_media(
    render_id: str,
    session_id: str,
    draft_version: int,
    draft: Any,
    created_at: float,
    output_bytes: int = 0,
) -> RenderMedia:
    """The render's file. ``output_bytes`` 0 makes a small one; else the whole file has that size (at least
    the head's). Same inputs, same bytes."""
    about = {
        "render_id": render_id,
        "session_id": session_id,
        "draft_version": draft_version,
        "draft_sha256": hashlib.sha256(json.dumps(draft, sort_keys=True).encode()).hexdigest(),
    }
    duration = draft_duration_ms(draft)
    width, height = _size(draft)
    when = int(created_at) + _EPOCH_1904
    ftyp = box(b"ftyp", b"isom", struct.pack(">I", 512), b"isomiso2avc1mp41")
    udta = box(b"udta", box(b"free", json.dumps(about, separators=(",", ":")).encode()))

    def head_for(payload: int) -> bytes:
        moov_len = len(box(b"moov", _mvhd(when, duration), _trak(when, duration, width, height, 0, 0), udta))
        offset = len(ftyp) + moov_len + 8
        moov = box(b"moov", _mvhd(when, duration), _trak(when, duration, width, height, payload, offset), udta)
        return ftyp + moov + struct.pack(">I", 8 + payload) + b"mdat"

    head_len = len(head_for(0))
    payload = SMALL_PAYLOAD if output_bytes <= 0 else max(0, min(output_bytes, MAX_OUTPUT_BYTES) - head_len)
    tag = hashlib.sha256(json.dumps(about, sort_keys=True).encode()).digest()[:16]
    return RenderMedia(head=head_for(payload), payload_size=payload, duration_ms=duration, tag=tag)
