"""Where a job's uploaded files live on disk, and how they are removed.

Each upload gets a folder of its own, `<uploads_dir>/up-<random>/<client's file name>`, so the file keeps the name
its client gave it (the upstream shows that name in the timeline) and two uploads of `clip.mp4` never collide.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

FOLDER_PREFIX = "up-"


def new_upload_path(directory: Path, filename: str) -> Path:
    """A fresh folder under ``directory`` and the path ``filename`` will have in it (``filename`` is a checked
    base name: no separators, not "." or "..")."""
    folder = Path(tempfile.mkdtemp(dir=directory, prefix=FOLDER_PREFIX))
    return folder / filename


def remove_upload(path: str | os.PathLike[str]) -> None:
    """Delete an uploaded file, and the folder made for it (a file stored the older way, directly in the uploads
    directory, is deleted alone)."""
    file = Path(path)
    file.unlink(missing_ok=True)
    if file.parent.name.startswith(FOLDER_PREFIX):
        shutil.rmtree(file.parent, ignore_errors=True)
