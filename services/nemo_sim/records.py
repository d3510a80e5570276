"""The simulator's records: users, tokens, sessions, renders. Plain data; ``state.py`` owns them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class User:
    user_id: str  # "anon_…" (minted) or "usr_…" (registered by a test, like a configured NEMO_TOKEN)
    available: int
    frozen: int = 0


@dataclass
class Token:
    user_id: str
    expires_at: float | None  # epoch seconds; None never expires (until /_sim/tokens/expire)

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at


@dataclass
class Session:
    session_id: str
    task_id: str
    task_name: str
    language: str
    user_id: str
    draft: dict[str, Any] | None = None
    draft_version: int = 0
    video_infos: list[dict[str, Any]] = field(default_factory=list)
    generated_media: list[dict[str, Any]] = field(default_factory=list)
    files: list[dict[str, Any]] = field(default_factory=list)  # uploads as received (size, sha256, source)
    messages: list[str] = field(default_factory=list)
    renders: list[str] = field(default_factory=list)
    runs_in_progress: int = 0
    edits: int = 0  # agent edits applied so far (picks the next kind of edit)
    token_key: str | None = None  # the token that created it (``capacity.token_key``)
    lost: bool = False  # the upstream forgot it (``DELETE /_sim/sessions/<sid>``): every call says not found


@dataclass
class Render:
    render_id: str
    session_id: str
    user_id: str
    draft: dict[str, Any]
    draft_version: int
    created_at: float  # epoch seconds
    duration_s: float  # wall-clock seconds from submit to completion
    fails: bool
    canceled_at: float | None = None  # epoch seconds; a canceled render stays canceled
    output_bytes: int = 0  # config.output_bytes at submit: the size of the file it serves (0: small)
    token_key: str | None = None  # the token that submitted it
    duplicate_of: str | None = None  # an earlier live render of the same session and draft version
