"""A local directory store: files 0600 in directories 0700, each written to a hidden temp file beside its final
name, fsynced, then renamed into place, so a reader never sees part of one."""

from __future__ import annotations

import errno
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

from shared.artifacts.errors import StoreFull, StoreUnavailable
from shared.artifacts.stores.base import READ_CHUNK

FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
PART_SUFFIX = ".part"


def store_error(exc: OSError, doing: str) -> StoreFull | StoreUnavailable:
    if exc.errno in FULL_ERRNOS:
        return StoreFull(f"the artifact store is full ({doing}: {os.strerror(exc.errno or 0)})")
    return StoreUnavailable(f"the artifact store failed ({doing}: {exc.strerror or exc.__class__.__name__})")


class LocalWriter:
    def __init__(self, fd: int, tmp: Path, dest: Path) -> None:
        self._fd: int | None = fd
        self._tmp = tmp
        self._dest = dest

    def write(self, chunk: bytes) -> None:
        view = memoryview(chunk)
        try:
            while view:
                written = os.write(self._require_fd(), view)
                view = view[written:]
        except OSError as exc:
            raise store_error(exc, "writing") from exc

    def commit(self) -> None:
        try:
            os.fsync(self._require_fd())
            self._close()
            os.replace(self._tmp, self._dest)
            _fsync_dir(self._dest.parent)
        except OSError as exc:
            self.abort()
            raise store_error(exc, "publishing") from exc

    def abort(self) -> None:
        self._close()
        self._tmp.unlink(missing_ok=True)

    def _require_fd(self) -> int:
        if self._fd is None:
            raise StoreUnavailable("the artifact file is already closed")
        return self._fd

    def _close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)


class LocalStore:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.url = self.root.as_uri()

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"

    def path_of(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root) or path == self.root:
            raise ValueError(f"key {key!r} leaves the store")
        return path

    def writer(self, key: str, content_type: str) -> LocalWriter:
        dest = self.path_of(key)
        tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:12]}{PART_SUFFIX}")
        try:
            _make_dirs(dest.parent, self.root)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
        except OSError as exc:
            raise store_error(exc, "creating the file") from exc
        return LocalWriter(fd, tmp, dest)

    def size_of(self, key: str) -> int | None:
        try:
            return self.path_of(key).stat().st_size
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise store_error(exc, "reading") from exc

    def read(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        try:
            handle = self.path_of(key).open("rb")
        except OSError as exc:
            raise store_error(exc, "opening") from exc
        with handle:
            handle.seek(start)
            left = None if end is None else end - start + 1
            while left is None or left > 0:
                chunk = handle.read(READ_CHUNK if left is None else min(READ_CHUNK, left))
                if not chunk:
                    return
                if left is not None:
                    left -= len(chunk)
                yield chunk

    def delete(self, key: str) -> None:
        try:
            self.path_of(key).unlink(missing_ok=True)
        except OSError as exc:
            raise store_error(exc, "deleting") from exc

    def presigned_url(self, key: str, *, expires_s: int, filename: str, content_type: str) -> str | None:
        return None


def _make_dirs(path: Path, root: Path) -> None:
    """Create ``path`` and its parents up to ``root``, each 0700 whatever the umask."""
    missing = []
    current = path
    while not current.exists():
        missing.append(current)
        if current == root or current.parent == current:
            break
        current = current.parent
    for directory in reversed(missing):
        directory.mkdir(mode=0o700, parents=directory == root, exist_ok=True)
        os.chmod(directory, 0o700)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
