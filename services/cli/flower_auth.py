"""Flower's basic auth, failing closed.

Flower splits ``FLOWER_BASIC_AUTH`` on commas and a command-line password would show in the process list, so the
credential reaches Flower through a config file of its own: 0600 in a fresh 0700 directory, written with
``repr()`` (any character survives), removed when Flower exits. Flower always gets this file, so it never reads a
``flowerconfig.py`` from the current directory.
"""

from __future__ import annotations

import ipaddress
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from shared.private_files import write_private
from shared.settings import Settings

# Well-known placeholders (templates, old READMEs): refused like no password at all beyond loopback.
PLACEHOLDERS = frozenset({"change-me", "changeme", "demo", "admin", "password", "secret", "flower"})


def is_loopback(host: str) -> bool:
    host = host.strip().strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name or a wildcard ("0.0.0.0", "::"): reachable from elsewhere


def problem(host: str, settings: Settings) -> str | None:
    """Why Flower must not start with these settings on ``host``, or None."""
    user = settings.flower_user
    if not user or ":" in user or not user.isascii():
        return "REELMILL_FLOWER_USER must be a non-empty ASCII name without ':'"
    if settings.flower_password is None:
        if is_loopback(host):
            return None
        return (
            f"refusing to serve Flower on {host} without a password: set REELMILL_FLOWER_PASSWORD "
            "(e.g. `openssl rand -base64 24`), or listen on 127.0.0.1"
        )
    password = settings.flower_password.get_secret_value()
    if not password:
        return "REELMILL_FLOWER_PASSWORD is empty; set a real password (e.g. `openssl rand -base64 24`)"
    if not password.isascii():
        return "REELMILL_FLOWER_PASSWORD must be ASCII (Flower compares credentials as ASCII); commas, colons work"
    if password.strip().lower() in PLACEHOLDERS and not is_loopback(host):
        return "REELMILL_FLOWER_PASSWORD is a placeholder; set a real password (e.g. `openssl rand -base64 24`)"
    return None


def config_text(settings: Settings) -> str:
    if settings.flower_password is None:
        return "basic_auth = []\n"
    credential = f"{settings.flower_user}:{settings.flower_password.get_secret_value()}"
    return f"basic_auth = [{credential!r}]\n"


@contextmanager
def config_file(settings: Settings) -> Iterator[Path]:
    """A private Flower config file holding the credential, removed on exit."""
    folder = Path(tempfile.mkdtemp(prefix="reelmill-flower-"))  # 0700
    try:
        path = folder / "flowerconfig.py"
        write_private(path, config_text(settings))
        yield path
    finally:
        shutil.rmtree(folder, ignore_errors=True)
