"""The upstream's capacity per token: concurrent agent runs ("streams"), concurrent renders, calls per second.

Each limit is a config setting, 0 = unlimited (the default). Beyond one, the call is answered HTTP 429 with
``Retry-After`` (when the earliest slot frees, or the bucket refills; at least 1 s) and nothing is done.
Current and peak use and the refusals by class are kept per token whatever the limits, so a test can check
that a client never went past K even with no limit armed.

- A stream slot is the agent run: taken when ``/run_sse`` accepts a message, freed when the run ends (the
  agent works server-side, so a client that left early still holds the slot until then); or, with
  ``stream_slot_until`` ``disconnect``, the open stream connection (``open_streams``). Both are counted.
- A render slot is taken at submit and freed when the render completes, fails or is canceled (by the clock).
- The call rate is a token bucket per token over every call that carries the token.

Tokens are named by ``token_key`` (never the token itself).
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from services.nemo_sim.config import SimConfig
from services.nemo_sim.records import Render
from services.nemo_sim.render_clock import status_of

CLASSES = ("rate", "streams", "renders")


def token_key(token: str) -> str:
    """How counters name a token: ``tok_`` and 12 hex digits of its sha256."""
    return "tok_" + hashlib.sha256(token.encode()).hexdigest()[:12]


class Refused(Exception):
    """Past a limit: answer 429 with ``Retry-After: retry_after``."""

    def __init__(self, kind: str, limit: float, retry_after: int) -> None:
        super().__init__(f"{kind} limit {limit:g} reached")
        self.kind, self.limit, self.retry_after = kind, limit, retry_after


@dataclass
class TokenUse:
    user_id: str
    sessions_created: int = 0
    runs: dict[int, float] = field(default_factory=dict)  # run id -> when it ends (epoch s)
    streams_peak: int = 0
    open_streams: int = 0
    open_streams_peak: int = 0
    renders: dict[str, Render] = field(default_factory=dict)  # submitted, maybe not finished yet
    renders_peak: int = 0
    bucket: float | None = None  # tokens left; None: full
    bucket_at: float = 0.0
    refused: Counter[str] = field(default_factory=Counter)

    def active_renders(self, now: float) -> list[Render]:
        for render_id, render in list(self.renders.items()):
            if status_of(render, now).terminal:
                del self.renders[render_id]
        return list(self.renders.values())

    def view(self, now: float) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "sessions_created": self.sessions_created,
            "streams": {"current": len(self.runs), "peak": self.streams_peak},
            "open_streams": {"current": self.open_streams, "peak": self.open_streams_peak},
            "renders": {"current": len(self.active_renders(now)), "peak": self.renders_peak},
            "capacity_429": {kind: self.refused.get(kind, 0) for kind in CLASSES},
        }


def _wait(seconds: float) -> int:
    return max(1, math.ceil(seconds))


class Capacity:
    def __init__(self) -> None:
        self.tokens: dict[str, TokenUse] = {}

    def use(self, key: str, user_id: str) -> TokenUse:
        found = self.tokens.get(key)
        if found is None:
            found = self.tokens[key] = TokenUse(user_id=user_id)
        return found

    def admit_call(self, use: TokenUse, config: SimConfig, now: float | None = None) -> None:
        """Take one call from the token's bucket; ``Refused`` when it is empty."""
        rate = config.rps_per_token
        if rate <= 0:
            return
        now = time.monotonic() if now is None else now
        size = config.rps_burst or max(1.0, rate)
        level = size if use.bucket is None else min(size, use.bucket + (now - use.bucket_at) * rate)
        use.bucket_at = now
        if level < 1:
            use.bucket = level
            self._refuse(use, "rate", rate, (1 - level) / rate)
        use.bucket = level - 1

    def admit_run(self, use: TokenUse, config: SimConfig, run_id: int, ends_at: float) -> None:
        """Take a stream slot for an agent run ending at ``ends_at``; ``Refused`` when none is free. The slot
        is the run (``stream_slot_until`` ``run_end``) or the open stream connection (``disconnect``)."""
        limit = config.max_streams_per_token
        held = len(use.runs) if config.stream_slot_until == "run_end" else use.open_streams
        if limit and held >= limit:
            self._refuse(use, "streams", limit, min(use.runs.values(), default=time.time()) - time.time())
        use.runs[run_id] = ends_at
        use.streams_peak = max(use.streams_peak, len(use.runs))

    def end_run(self, use: TokenUse, run_id: int) -> None:
        use.runs.pop(run_id, None)

    def check_render(self, use: TokenUse, config: SimConfig, now: float) -> None:
        """``Refused`` when the token has no render slot free (nothing is taken: ``add_render`` does)."""
        limit = config.max_renders_per_token
        active = use.active_renders(now)
        if limit and len(active) >= limit:
            self._refuse(use, "renders", limit, min(r.created_at + r.duration_s for r in active) - now)

    def add_render(self, use: TokenUse, render: Render, now: float) -> None:
        use.renders[render.render_id] = render
        use.renders_peak = max(use.renders_peak, len(use.active_renders(now)))

    def stream_opened(self, use: TokenUse) -> None:
        use.open_streams += 1
        use.open_streams_peak = max(use.open_streams_peak, use.open_streams)

    def stream_closed(self, use: TokenUse) -> None:
        use.open_streams -= 1

    def _refuse(self, use: TokenUse, kind: str, limit: float, wait_s: float) -> None:
        use.refused[kind] += 1
        raise Refused(kind, limit, _wait(wait_s))

    def snapshot(self, now: float | None = None) -> dict[str, Any]:
        now = time.time() if now is None else now
        return {key: use.view(now) for key, use in self.tokens.items()}

    def refused_totals(self) -> dict[str, int]:
        return {kind: sum(use.refused.get(kind, 0) for use in self.tokens.values()) for kind in CLASSES}
