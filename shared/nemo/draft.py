"""Reading NemoVideo's draft JSON (short keys) without trusting it to be complete.

Draft ``{"t": [tracks], "d": total ms, "m": {"title", "width", "height"}}``; track ``{"tt": 0 video | 1 audio |
7 text, "n": name, "sg": [segments]}``; segment ``{"s": start ms, "d": duration ms, "n": label, "src": path,
"v": volume 0-100, "x": text}``. Any key may be missing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any

TRACK_TYPES = {0: "video", 1: "audio", 7: "text"}
_DEFAULT_NAMES = {"video": "Video", "audio": "Audio", "text": "Text", "other": "Track"}


def _track_list(draft: Any) -> list[Mapping[str, Any]]:
    if not isinstance(draft, Mapping) or not isinstance(draft.get("t"), list):
        return []
    return [t for t in draft["t"] if isinstance(t, Mapping)]


def _segments(track: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    segs = track.get("sg")
    return [s for s in segs if isinstance(s, Mapping)] if isinstance(segs, list) else []


def is_export_ready(draft: Any) -> bool:
    """The upstream renders a draft only when ``t`` exists and at least one track has a segment."""
    return any(_segments(track) for track in _track_list(draft))


def _ms(value: Any) -> float:
    if isinstance(value, bool):
        return 0.0
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def _track_type(track: Mapping[str, Any]) -> str:
    tt = track.get("tt")
    return TRACK_TYPES.get(tt, "other") if isinstance(tt, int) and not isinstance(tt, bool) else "other"


def _segment(seg: Mapping[str, Any]) -> dict[str, Any]:
    start = _ms(seg.get("s")) / 1000.0
    src = seg.get("src") if isinstance(seg.get("src"), str) else None
    label = seg.get("n") if isinstance(seg.get("n"), str) and seg.get("n") else None
    volume = seg.get("v")
    return {
        "start_s": start,
        "end_s": start + _ms(seg.get("d")) / 1000.0,
        "label": label or (PurePosixPath(src).name if src else None),
        "volume": volume if isinstance(volume, int | float) and not isinstance(volume, bool) else None,
        "text": seg.get("x") if isinstance(seg.get("x"), str) else None,
        "src": src,
    }


def tracks(draft: Any) -> list[dict[str, Any]]:
    """The draft's tracks as readable JSON: index (1-based), type, name and segments in seconds."""
    out = []
    for index, track in enumerate(_track_list(draft), start=1):
        kind = _track_type(track)
        name = track.get("n") if isinstance(track.get("n"), str) and track.get("n") else _DEFAULT_NAMES[kind]
        out.append({"index": index, "type": kind, "name": name, "segments": [_segment(s) for s in _segments(track)]})
    return out


def _secs(value: float) -> str:
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _segment_summary(kind: str, seg: dict[str, Any]) -> str:
    span = f"{_secs(seg['start_s'])}-{_secs(seg['end_s'])}s"
    if kind == "audio" and seg["volume"] is not None:
        span += f", {round(seg['volume'])}%"
    quoted = kind == "text" and seg["text"]
    label = f'"{seg["text"]}"' if quoted else seg["label"] or seg["text"] or "untitled"
    return f"{label} ({span})"


def timeline_summary(draft: Any) -> str:
    """``Timeline (3 tracks): 1. Video: city timelapse (0-10s) 2. BGM: Lo-fi (0-10s, 35%) 3. Title: "Urban
    Dreams" (0-3s)`` (the seeds' format); several segments on one track are joined with ", "."""
    items = tracks(draft)
    noun = "track" if len(items) == 1 else "tracks"
    parts = [f"Timeline ({len(items)} {noun}):"] if items else ["Timeline (0 tracks): empty"]
    for track in items:
        segs = ", ".join(_segment_summary(track["type"], s) for s in track["segments"]) or "(empty)"
        parts.append(f"{track['index']}. {track['name']}: {segs}")
    return " ".join(parts)


def is_empty(draft: Any) -> bool:
    """Every form an edit-less session's draft takes: ``null``, ``{}``, no tracks, tracks without segments. A
    draft's metadata alone (a default canvas, a duration of 0) does not make it an edit."""
    return not is_export_ready(draft)


def draft_fingerprint(draft: Any) -> str:
    """A stable hash of the draft's content (key order does not matter): equal drafts, equal fingerprints; every
    empty form (``null``, ``{}``, ``{"t": []}``, tracks without segments, whatever metadata it carries) has the one
    fingerprint ``EMPTY_DRAFT``."""
    if is_empty(draft):
        draft = None
    canonical = json.dumps(draft, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]


EMPTY_DRAFT = draft_fingerprint(None)
