"""What NemoVideo's replies mean to reelmill, as plain dataclasses (parsed in ``replies.py``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shared.nemo.errors import NemoError

RENDER_STATUSES = ("pending", "processing", "completed", "failed", "canceled")
RENDER_DONE = frozenset({"completed", "failed", "canceled"})


@dataclass(frozen=True)
class AnonymousToken:
    token: str = field(repr=False)  # a secret: never in a repr or a log line
    user_id: str
    expires_at: datetime
    credits: int


@dataclass(frozen=True)
class SessionInfo:
    task_id: str
    session_id: str
    user_id: str


@dataclass(frozen=True)
class UploadedFile:
    filename: str
    file_type: str  # video | image | audio
    cdn_url: str
    duration: float | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    hash: str | None = None


@dataclass(frozen=True)
class ToolCall:
    id: str | None
    name: str
    args: dict[str, Any]


@dataclass(frozen=True)
class ToolResult:
    id: str | None
    name: str
    response: Any


@dataclass(frozen=True)
class StreamResult:
    """One message's stream, folded: what the agent said and did, and how the stream ended.

    ``ended``: "closed" (the upstream closed it: the normal end), "cap" (``max_s`` reached), "idle" (no byte
    for ``idle_s``); the ``partial`` of an ``UpstreamConnectionError`` says "dropped".
    ``silent``: no user-facing text arrived (the seeds' ~30% of edits): poll the state to see what changed.
    """

    texts: list[str]
    tool_calls: list[ToolCall]
    tool_results: list[ToolResult]
    heartbeats: int
    events: int
    silent: bool
    error: NemoError | None
    ended: str
    duration_s: float
    noise: list[str] = field(default_factory=list)  # "temporary issue" texts kept out of ``texts``

    @property
    def text(self) -> str:
        return "\n\n".join(self.texts)


@dataclass(frozen=True)
class SessionState:
    session_id: str
    task_id: str | None
    draft: dict[str, Any] | None
    video_infos: list[Any]
    generated_media: Any
    canvas_config: dict[str, Any] | None
    raw: dict[str, Any] = field(repr=False)


@dataclass(frozen=True)
class Credits:
    available: int
    frozen: int
    total: int


@dataclass(frozen=True)
class RenderStatus:
    id: str
    status: str  # one of RENDER_STATUSES
    progress: int
    output_url: str | None = None
    duration: float | None = None
    size: int | None = None
    error: str | None = None
    created_at: datetime | None = None
    completed_at: datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def done(self) -> bool:
        return self.status in RENDER_DONE
