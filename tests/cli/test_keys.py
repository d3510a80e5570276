"""`reelmill keys` on the laptop default (SQLite in the data dir), as real subprocesses: it names the database it
uses, never creates a stray one, revokes by key id or a key read from stdin (never a key in argv), and the
database it creates through `reelmill migrate` is private. (Finding the running `reelmill up`'s database from
another directory is tested with a real `up` in tests/deploy/test_up.py.)"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REELMILL_")}
    env["XDG_STATE_HOME"] = str(tmp_path / "state")  # no `reelmill up` recorded there
    env.update(extra)
    return env


def reelmill(tmp_path: Path, *args: str, stdin: str | None = None, cwd: Path | None = None, **env: str):
    return subprocess.run(
        [sys.executable, "-m", "services.cli.main", *args],
        cwd=cwd or tmp_path, env=clean_env(tmp_path, **env), input=stdin, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.fixture()
def data_dir(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    made = reelmill(tmp_path, "migrate", REELMILL_DATA_DIR=str(data))
    assert made.returncode == 0, made.stderr
    return data


def test_no_database_is_an_error_that_names_it_and_creates_nothing(tmp_path: Path) -> None:
    listed = reelmill(tmp_path, "keys", "list")
    assert listed.returncode == 2
    assert f"no database at {tmp_path / '.reelmill' / 'reelmill.db'}" in listed.stderr
    assert "no `reelmill up` is running" in listed.stderr and "REELMILL_DATA_DIR" in listed.stderr
    assert not (tmp_path / ".reelmill").exists()
    made = reelmill(tmp_path, "keys", "create", "--tenant", "acme", REELMILL_DATA_DIR=str(tmp_path / "nowhere"))
    assert made.returncode == 2 and not (tmp_path / "nowhere").exists()


def test_the_data_dir_and_database_are_private(data_dir: Path) -> None:
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((data_dir / "reelmill.db").stat().st_mode) == 0o600


def test_create_list_and_revoke_by_id_or_stdin(tmp_path: Path, data_dir: Path) -> None:
    env = {"REELMILL_DATA_DIR": str(data_dir)}
    empty = reelmill(tmp_path, "keys", "list", **env)
    assert empty.returncode == 0 and "no API keys in this database" in empty.stderr
    assert f"database: sqlite:///{data_dir / 'reelmill.db'} (REELMILL_DATA_DIR)" in empty.stderr

    first = reelmill(tmp_path, "keys", "create", "--tenant", "acme", **env)
    assert first.returncode == 0, first.stderr
    key = first.stdout.strip()
    key_id = next(line.split()[-1] for line in first.stderr.splitlines() if line.startswith("key id:"))

    in_argv = reelmill(tmp_path, "keys", "revoke", key, **env)
    assert in_argv.returncode == 2 and "pass the key id" in in_argv.stderr and key not in in_argv.stderr
    assert f"{key_id}  " in reelmill(tmp_path, "keys", "list", **env).stdout
    assert "active" in reelmill(tmp_path, "keys", "list", **env).stdout

    revoked = reelmill(tmp_path, "keys", "revoke", key_id, **env)
    assert revoked.returncode == 0 and revoked.stdout.strip() == f"revoked {key_id}"

    second = reelmill(tmp_path, "keys", "create", "--tenant", "acme", **env).stdout.strip()
    by_stdin = reelmill(tmp_path, "keys", "revoke", "-", stdin=second + "\n", **env)
    assert by_stdin.returncode == 0, by_stdin.stderr
    states = [line.split()[-1] for line in reelmill(tmp_path, "keys", "list", **env).stdout.splitlines()]
    assert states == ["revoked", "revoked"]

    assert reelmill(tmp_path, "keys", "revoke", "key_doesnotexist", **env).returncode == 2
    assert "not a key id" in reelmill(tmp_path, "keys", "revoke", "whatever", **env).stderr
    assert "no key on stdin" in reelmill(tmp_path, "keys", "revoke", "-", stdin="", **env).stderr
