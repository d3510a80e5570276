"""The byte path of a mirror: chunks in, one object out, in constant memory whatever the size.

The body's first bytes must be an `ftyp` box before the store is even asked for a writer; sha256 and size are
computed as the chunks pass; the object is published only after the last chunk, and on any failure (the source,
the store, a cancel) the writer is aborted, so a partial object is never visible.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from shared.artifacts.errors import NotMp4, TooLarge
from shared.artifacts.mp4 import HEAD_BYTES, content_type_of, ftyp_brand
from shared.artifacts.stores.base import ArtifactStore, ObjectWriter

Tick = Callable[[int], None]  # called with the bytes copied so far, after each chunk


@dataclass(frozen=True)
class Copied:
    sha256: str
    size: int
    content_type: str


class _Copy:
    def __init__(self, store: ArtifactStore, key: str, max_bytes: int) -> None:
        self.store, self.key, self.max_bytes = store, key, max_bytes
        self.digest = hashlib.sha256()
        self.size = 0
        self.head = b""
        self.writer: ObjectWriter | None = None
        self.content_type = ""

    def feed(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.max_bytes:
            raise TooLarge(f"the output is larger than the limit of {self.max_bytes} bytes")
        self.digest.update(chunk)
        if self.writer is not None:
            self.writer.write(chunk)
            return
        self.head += chunk
        if len(self.head) >= HEAD_BYTES:
            self._open_writer()

    def _open_writer(self) -> None:
        brand = ftyp_brand(self.head[:HEAD_BYTES])
        if brand is None:
            raise NotMp4(f"the upstream's file is not an MP4 (it starts with {self.head[:12]!r}, not an ftyp box)")
        self.content_type = content_type_of(brand)
        self.writer = self.store.writer(self.key, self.content_type)
        head, self.head = self.head, b""
        self.writer.write(head)

    def finish(self) -> Copied:
        if self.writer is None:
            raise NotMp4(f"the upstream's file is not an MP4 (only {self.size} bytes)")
        self.writer.commit()
        return Copied(self.digest.hexdigest(), self.size, self.content_type)


def copy_into(
    chunks: Iterable[bytes], store: ArtifactStore, key: str, *, max_bytes: int, tick: Tick | None = None
) -> Copied:
    """Copy ``chunks`` to ``store`` under ``key``; the object appears whole at the end, or not at all."""
    copy = _Copy(store, key, max_bytes)
    try:
        for chunk in chunks:
            if chunk:
                copy.feed(chunk)
                if tick is not None:
                    tick(copy.size)
        return copy.finish()
    except BaseException:
        if copy.writer is not None:
            copy.writer.abort()
        raise
