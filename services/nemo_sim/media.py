"""Fake media metadata for uploaded files (never decoded). The MP4 a finished render serves is ``mp4.py``."""

from __future__ import annotations

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
