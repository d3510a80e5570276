"""The artifact stores, opened from their URL: `file:///dir` (a local directory) or `s3://bucket/prefix`.

Each artifact row records the URL of the store it went to, so a copy stays readable (and deletable) after the
operator points new ones elsewhere. One store object per URL per process (S3 clients are thread-safe).
"""

from __future__ import annotations

import threading
from pathlib import Path
from urllib.parse import unquote, urlsplit

from shared.artifacts.stores.base import ArtifactStore, ObjectWriter
from shared.settings import Settings, get_settings

__all__ = ["ArtifactStore", "ObjectWriter", "configured_store", "open_store", "parse_store_url", "reset_stores"]

_lock = threading.Lock()
_stores: dict[tuple[str, str | None], ArtifactStore] = {}


def parse_store_url(url: str) -> tuple[str, str, str]:
    """(scheme, location, prefix): ("file", "/abs/dir", "") or ("s3", "bucket", "prefix"); ValueError if neither."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        path = unquote(parts.path)
        if not path.startswith("/"):
            raise ValueError(f"artifact store {url!r}: a file URL needs an absolute path")
        return "file", path, ""
    if parts.scheme == "s3":
        if not parts.netloc:
            raise ValueError(f"artifact store {url!r}: name the bucket, as s3://bucket/prefix")
        return "s3", parts.netloc, parts.path.strip("/")
    raise ValueError(f"artifact store {url!r}: use a directory, file:///dir, s3://bucket/prefix or none")


def open_store(url: str, settings: Settings | None = None) -> ArtifactStore:
    settings = settings or get_settings()
    cache_key = (url, settings.s3_endpoint_url)
    with _lock:
        store = _stores.get(cache_key)
        if store is None:
            store = _stores[cache_key] = _build(url, settings)
    return store


def configured_store(settings: Settings | None = None) -> ArtifactStore | None:
    """The store new artifacts go to; None when mirroring is off (`REELMILL_ARTIFACT_STORE=none`)."""
    settings = settings or get_settings()
    url = settings.effective_artifact_store
    return None if url == "none" else open_store(url, settings)


def reset_stores() -> None:
    with _lock:
        _stores.clear()


def _build(url: str, settings: Settings) -> ArtifactStore:
    scheme, location, prefix = parse_store_url(url)
    if scheme == "file":
        from shared.artifacts.stores.local import LocalStore

        return LocalStore(Path(location))
    from shared.artifacts.stores.s3 import S3Store, s3_client  # boto3 is loaded only where S3 is used

    return S3Store(location, prefix, s3_client(settings.s3_endpoint_url))
