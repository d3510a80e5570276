"""Checking files against a skill profile before they leave, and handing them to httpx as streams.

httpx reads a multipart file object in 64 KiB chunks and takes the Content-Length from ``fstat``, so a
500 MB upload never sits in memory.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path, PurePosixPath
from typing import IO
from urllib.parse import urlsplit

from shared.nemo.errors import too_large, unsupported_type
from shared.nemo.profiles import SkillProfile

MultipartFiles = list[tuple[str, tuple[str, IO[bytes], str]]]


def validate_upload(path: Path, profile: SkillProfile) -> int:
    """The file's size; ``UnsupportedFileType``/``FileTooLarge`` when the profile refuses it."""
    if not profile.accepts(path.name):
        raise unsupported_type(path.name, profile)
    size = path.stat().st_size  # FileNotFoundError for a missing file: a local problem, not NemoVideo's
    if size > profile.max_upload_bytes:
        raise too_large(path.name, size, profile, message=f"file too large: {size} bytes > {profile.max_upload_label}")
    return size


def validate_url(url: str, profile: SkillProfile) -> None:
    """Refuse a URL whose path names a format the profile does not take (no extension: the backend decides)."""
    name = PurePosixPath(urlsplit(url).path).name
    if "." in name and not profile.accepts(name):
        raise unsupported_type(name, profile)


def content_type(path: Path) -> str:
    return mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def multipart_files(paths: Sequence[Path], stack: ExitStack) -> MultipartFiles:
    """The ``files`` field, repeated once per path, each an open file that ``stack`` closes."""
    return [("files", (p.name, stack.enter_context(p.open("rb")), content_type(p))) for p in paths]
