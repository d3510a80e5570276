"""Every setting is read through `Settings` (shared/settings.py): the launcher, the process roles, the CLI and the
broker/log helpers never read a REELMILL_* variable from the environment themselves."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from shared.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
CHECKED = [*sorted((ROOT / "services" / "cli").glob("*.py"))] + [
    ROOT / "shared" / name for name in ("embedded_redis.py", "logs.py", "redis_conn.py", "private_files.py")
]
READ = re.compile(r"""(os\.environ\.get\(|os\.getenv\(|os\.environ\[)\s*["']REELMILL_""")


@pytest.mark.parametrize("path", CHECKED, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_setting_is_read_from_the_environment(path: Path) -> None:
    assert not READ.search(path.read_text()), f"{path.name} reads a REELMILL_* variable itself"


def test_the_settings_that_used_to_bypass_settings_are_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REELMILL_BEAT_SCHEDULE", "/tmp/beat-schedule")
    monkeypatch.setenv("REELMILL_CLI_POLL_S", "0.25")
    monkeypatch.setenv("REELMILL_API_KEY", "rm_live_x")
    monkeypatch.setenv("REELMILL_OUTBOUND_ALLOW_ADDRESSES", '["127.0.0.1:8300"]')
    settings = Settings()
    assert settings.effective_beat_schedule == Path("/tmp/beat-schedule")
    assert settings.cli_poll_s == 0.25
    assert settings.api_key is not None and settings.api_key.get_secret_value() == "rm_live_x"
    assert settings.outbound_allow_addresses == ["127.0.0.1:8300"]
    assert Settings(data_dir=Path("/d"), beat_schedule=None).effective_beat_schedule == Path("/d/celerybeat-schedule")


def test_the_redis_password_goes_into_the_url_quoted() -> None:
    settings = Settings(redis_url="redis://127.0.0.1:6379/0", redis_password="a:b@c/d,e")
    assert settings.effective_redis_url == "redis://:a%3Ab%40c%2Fd%2Ce@127.0.0.1:6379/0"
    assert Settings(redis_url="redis://h:1/0", redis_password=None).effective_redis_url == "redis://h:1/0"
