"""Files only their owner may read: the data directory (0700) and what it keeps (secrets, the SQLite database,
logs: 0600).

Every write refuses to follow a symlink (``O_NOFOLLOW``), so another local user cannot plant a link in a shared
location and have a secret written through it.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Callable
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


class PrivateFileError(OSError):
    """A private path is a symlink or not what it should be (a directory where a file was expected...)."""


def make_private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) if missing; make it 0700. A symlink is refused."""
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    info = path.lstat()
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise PrivateFileError(f"{path} must be a directory, not a symlink or a file")
    if stat.S_IMODE(info.st_mode) != DIR_MODE:
        path.chmod(DIR_MODE)
    return path


def write_private(path: Path, text: str) -> None:
    """Write ``text`` (plus a newline) to ``path`` with mode 0600, never through a symlink."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags, FILE_MODE)
    except OSError as exc:
        if os.path.islink(path):
            raise PrivateFileError(f"{path} is a symlink; refusing to write a secret through it") from exc
        raise
    with os.fdopen(fd, "w") as fh:
        os.fchmod(fd, FILE_MODE)  # in case it existed with a wider mode
        fh.write(text + "\n")


def read_private(path: Path) -> str:
    """The stripped text of ``path`` ('' when missing), read without following a symlink; tightened to 0600."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return ""
    except OSError as exc:
        if os.path.islink(path):
            raise PrivateFileError(f"{path} is a symlink; refusing to read a secret through it") from exc
        raise
    with os.fdopen(fd) as fh:
        os.fchmod(fd, FILE_MODE)
        return fh.read().strip()


def kept_secret(path: Path, make: Callable[[], str]) -> str:
    """The secret stored at ``path``, or a new one from ``make()`` stored there (0600): the same across restarts."""
    stored = read_private(path)
    if stored:
        return stored
    secret = make()
    write_private(path, secret)
    return secret


def tighten(paths: list[Path]) -> None:
    """Make existing regular files 0600 (an older version created them 0644); symlinks are left alone."""
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            info = path.lstat()
            if stat.S_ISREG(info.st_mode) and stat.S_IMODE(info.st_mode) != FILE_MODE:
                path.chmod(FILE_MODE)
