"""The store protocol: what the mirror, the API and the sweeper need from a place that keeps objects.

A writer makes an object visible whole or not at all: `commit` publishes it (an atomic rename, a completed
multipart upload), `abort` leaves nothing behind. Stores turn their own failures into `StoreFull` or
`StoreUnavailable` (shared/artifacts/errors.py) at this boundary.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

READ_CHUNK = 256 * 1024


class ObjectWriter(Protocol):
    def write(self, chunk: bytes) -> None: ...

    def commit(self) -> None:
        """Publish the object under its key, whole; before this nothing of it is visible."""

    def abort(self) -> None:
        """Drop whatever was written; never raises."""


class ArtifactStore(Protocol):
    url: str  # file:///dir or s3://bucket/prefix: recorded on each artifact row

    def writer(self, key: str, content_type: str) -> ObjectWriter: ...

    def size_of(self, key: str) -> int | None:
        """The object's size in bytes, or None when there is no such object."""

    def read(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """The bytes from ``start`` to ``end`` (inclusive; None: to the end), in chunks."""

    def delete(self, key: str) -> None:
        """Delete the object; deleting one that is not there is not an error."""

    def presigned_url(self, key: str, *, expires_s: int, filename: str, content_type: str) -> str | None:
        """A time-limited URL that serves the object without our credentials, or None when the store has none."""
