"""shared/private_files.py and the data dir `reelmill up` prepares: 0700 / 0600, no write or read through a
symlink, files an older version left 0644 tightened."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from services.cli import datadir
from shared.private_files import PrivateFileError, kept_secret, make_private_dir, read_private, write_private


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_write_private_is_0600_even_over_a_wider_file(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_text("old")
    path.chmod(0o644)
    write_private(path, "new")
    assert path.read_text() == "new\n" and mode(path) == 0o600


def test_a_symlink_is_never_written_or_read_through(tmp_path: Path) -> None:
    target = tmp_path / "victim"
    target.write_text("untouched")
    link = tmp_path / "dev-api-key"
    link.symlink_to(target)
    with pytest.raises(PrivateFileError, match="symlink"):
        write_private(link, "rm_live_secret")
    with pytest.raises(PrivateFileError, match="symlink"):
        read_private(link)
    assert target.read_text() == "untouched"
    (tmp_path / "real").mkdir()
    (tmp_path / "dirlink").symlink_to(tmp_path / "real")
    with pytest.raises(PrivateFileError):
        make_private_dir(tmp_path / "dirlink")


def test_a_kept_secret_is_made_once(tmp_path: Path) -> None:
    made = kept_secret(tmp_path / "pw", lambda: "first")
    assert made == "first" and kept_secret(tmp_path / "pw", lambda: "second") == "first"
    assert mode(tmp_path / "pw") == 0o600


def test_prepare_makes_the_data_dir_private_and_tightens_old_files(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "logs").mkdir(parents=True)
    data.chmod(0o755)
    for name in ("reelmill.db", "reelmill.db-wal", "dev-api-key", "logs/api.log"):
        (data / name).write_text("x")
        (data / name).chmod(0o644)
    datadir.prepare(data)
    assert mode(data) == 0o700 and mode(data / "logs") == 0o700
    for name in ("reelmill.db", "reelmill.db-wal", "dev-api-key", "logs/api.log"):
        assert mode(data / name) == 0o600, name
    fresh = tmp_path / "fresh" / "data"
    datadir.prepare(fresh)
    assert mode(fresh) == 0o700


def test_one_up_per_data_dir(tmp_path: Path) -> None:
    with datadir.hold_lock(tmp_path):
        assert datadir.is_running(tmp_path)
        with pytest.raises(datadir.DataDirBusy, match="another `reelmill up`"):
            datadir.hold_lock(tmp_path)
    assert not datadir.is_running(tmp_path)
