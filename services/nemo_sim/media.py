"""Fake media: metadata for uploaded files (never decoded), and the small MP4 a finished render serves."""

from __future__ import annotations

import hashlib
import json
import struct
from typing import Any

VIDEO_FORMATS = frozenset({"mp4", "mov", "avi", "webm", "mkv"})
AUDIO_FORMATS = frozenset({"mp3", "wav", "m4a", "aac"})
_ASPECTS = ((1920, 1080), (1080, 1920), (1080, 1080))


def file_type(fmt: str) -> str:
    if fmt in VIDEO_FORMATS:
        return "video"
    if fmt in AUDIO_FORMATS:
        return "audio"
    return "image"


def media_info(filename: str, fmt: str, digest: str, cdn_url: str) -> dict[str, Any]:
    """``video_infos`` entry for a file; duration and size are derived from its hash, so stable per file."""
    kind = file_type(fmt)
    seed = int(digest[:8], 16)
    width, height = _ASPECTS[seed % len(_ASPECTS)]
    duration, fps = 0.0, 0
    if kind == "video":
        duration, fps = float(5 + seed % 26), 30
    elif kind == "audio":
        duration, width, height = float(30 + seed % 150), 0, 0
    return {
        "filename": filename,
        "file_type": kind,
        "cdn_url": cdn_url,
        "duration": duration,
        "width": width,
        "height": height,
        "fps": fps,
        "hash": digest,
    }


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def render_mp4(render_id: str, session_id: str, draft_version: int, draft: dict[str, Any]) -> bytes:
    """A few KB shaped like an MP4 (ftyp, free, mdat), distinct per render: it names the render and draft."""
    about = {
        "render_id": render_id,
        "session_id": session_id,
        "draft_version": draft_version,
        "draft_sha256": hashlib.sha256(json.dumps(draft, sort_keys=True).encode()).hexdigest(),
    }
    ftyp = _box(b"ftyp", b"isom" + struct.pack(">I", 512) + b"isomiso2avc1mp41")
    free = _box(b"free", json.dumps(about, separators=(",", ":")).encode())
    block, chunks = render_id.encode(), []
    for _ in range(96):  # 96 x 32 bytes of deterministic "frames"
        block = hashlib.sha256(block).digest()
        chunks.append(block)
    return ftyp + free + _box(b"mdat", b"".join(chunks))
