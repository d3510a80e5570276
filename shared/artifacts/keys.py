"""Object keys: `<tenant>/<job>/<turn>.mp4`, stable per artifact, so a retried copy lands on the same key."""

from __future__ import annotations

import re

_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


def artifact_key(tenant_id: str, job_id: str, turn_seq: int) -> str:
    return f"{_safe(tenant_id)}/{_safe(job_id)}/{turn_seq}.mp4"


def _safe(part: str) -> str:
    cleaned = _SAFE.sub("_", part).strip(".")
    if not cleaned:
        raise ValueError(f"{part!r} cannot be a key segment")
    return cleaned
