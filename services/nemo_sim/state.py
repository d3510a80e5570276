"""All of the simulator's state, in memory: users, tokens, sessions, renders, faults, counters, capacity.

Handlers run on one event loop and never await inside a mutation, so each mutation is atomic for asyncio;
the compound ones (credits, minting) also hold a lock, so unit tests may drive them from threads.
Every lookup is a dict access. With ``state_file`` set, ``persist.py`` keeps what a restart must not lose;
``touch()`` says something it keeps may have changed.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import random
import secrets
import shutil
import tempfile
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

from services.nemo_sim.accounting import Ledger
from services.nemo_sim.capacity import Capacity
from services.nemo_sim.config import SimConfig
from services.nemo_sim.faults import FaultBook
from services.nemo_sim.mp4 import RenderMedia
from services.nemo_sim.records import Render, Session, Token, User

MINT_WINDOW_S = 3600.0


class RateLimited(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"retry after {retry_after}s")
        self.retry_after = retry_after


class SimState:
    def __init__(self, config: SimConfig) -> None:
        self.start_config = config
        self.config = config
        self.secret = secrets.token_bytes(16)  # signs the download links renders hand out
        self.state_file = Path(config.state_file) if config.state_file else None
        if self.state_file is None:
            self.files_root = Path(tempfile.mkdtemp(prefix="nemo_sim_"))
        else:  # uploads survive a restart too, next to the state file
            self.files_root = self.state_file.with_name(self.state_file.name + ".files")
            self.files_root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.changed: asyncio.Event | None = None  # set by touch(); the state file's writer waits on it
        self.run_ids = itertools.count(1)  # never restarts, so a stopped run cannot free a newer one's slot
        self._fresh()

    def _fresh(self) -> None:
        self.faults = FaultBook()
        self.ledger = Ledger()
        self.users: dict[str, User] = {}
        self.tokens: dict[str, Token] = {}
        self.sessions: dict[str, Session] = {}
        self.renders: dict[str, Render] = {}
        self.mints: dict[str, deque[float]] = {}
        self.rng = random.Random(self.config.seed)
        self.runs: set[asyncio.Task[None]] = set()
        self.active_runs: dict[int, Any] = {}  # run id -> agent.Run, while it runs
        self.capacity = Capacity()
        self.media: dict[str, RenderMedia] = {}  # render id -> its file (built once)
        self.output_sha: dict[str, str] = {}  # render id -> sha256 of its file (computed once)
        self.status_replies = 0  # alternates the render status shape when render_shape is "both"
        self.stream_errors = 0  # cycles the three in-stream error forms

    # --- lifecycle ----------------------------------------------------------------------------
    def reset(self) -> None:
        """Drop all state, counters and faults; config back to the start config. Running agent runs stop."""
        self.stop_runs()
        self.config = self.start_config
        self._fresh()
        self.clear_files()
        self.touch()

    def stop_runs(self) -> None:
        for task in list(self.runs):
            task.cancel()

    def touch(self) -> None:
        """Something the state file keeps may have changed."""
        if self.changed is not None:
            self.changed.set()

    @property
    def error_fields(self) -> tuple[str, ...]:
        return self.config.error_fields

    def set_config(self, config: SimConfig) -> None:
        if config.seed != self.config.seed:
            self.rng = random.Random(config.seed)
        self.config = config

    def clear_files(self) -> None:
        shutil.rmtree(self.files_root, ignore_errors=True)
        self.files_root.mkdir(parents=True, exist_ok=True)

    def close(self) -> None:
        if self.state_file is None:
            shutil.rmtree(self.files_root, ignore_errors=True)

    # --- users and tokens ---------------------------------------------------------------------
    def mint_anonymous(self, client_id: str, now: float | None = None) -> tuple[str, User, float]:
        """A new anonymous user and token; ``RateLimited`` past the per-client hourly limit."""
        now = time.time() if now is None else now
        with self._lock:
            recent = self.mints.setdefault(client_id, deque())
            while recent and recent[0] <= now - MINT_WINDOW_S:
                recent.popleft()
            if len(recent) >= self.config.anon_per_client_limit:
                oldest = recent[0] if recent else now
                raise RateLimited(max(1, math.ceil(oldest + MINT_WINDOW_S - now)))
            recent.append(now)
            user = User(user_id=f"anon_{secrets.token_hex(8)}", available=self.config.anonymous_credits)
            token = f"nmv_usr_{secrets.token_urlsafe(24)}"
            expires_at = now + self.config.token_ttl_s
            self.users[user.user_id] = user
            self.tokens[token] = Token(user_id=user.user_id, expires_at=expires_at)
        return token, user, expires_at

    def register_token(self, token: str, credits: int, user_id: str | None = None) -> User:
        """A "registered" user's token (like a configured NEMO_TOKEN); re-registering sets its credits."""
        with self._lock:
            user_id = user_id or f"usr_{secrets.token_hex(8)}"
            user = self.users.get(user_id)
            if user is None:
                user = self.users[user_id] = User(user_id=user_id, available=credits)
            else:
                user.available = credits
            self.tokens[token] = Token(user_id=user_id, expires_at=None)
        return user

    def expire_tokens(self, now: float | None = None) -> int:
        now = time.time() if now is None else now
        for token in self.tokens.values():
            token.expires_at = now - 1
        return len(self.tokens)

    # --- credits ------------------------------------------------------------------------------
    def freeze(self, user: User, cost: int) -> bool:
        """available -> frozen; False (nothing moved) when the user cannot afford ``cost``."""
        with self._lock:
            if user.available < cost:
                return False
            user.available -= cost
            user.frozen += cost
            return True

    def spend(self, user: User, cost: int) -> None:
        """frozen -> gone, at the end of a run."""
        with self._lock:
            user.frozen = max(0, user.frozen - cost)

    def set_credits(self, available: int, user_id: str | None = None) -> int:
        with self._lock:
            users = list(self.users.values()) if user_id is None else [self.users[user_id]]
            for user in users:
                user.available = available
        return len(users)

    # --- sessions -----------------------------------------------------------------------------
    def new_session(self, user_id: str, task_name: str, language: str, token_key: str | None = None) -> Session:
        session = Session(
            session_id=str(10**18 + secrets.randbelow(9 * 10**18)),
            task_id=f"task_{secrets.token_hex(8)}",
            task_name=task_name,
            language=language,
            user_id=user_id,
            token_key=token_key,
        )
        self.sessions[session.session_id] = session
        if token_key is not None:
            self.capacity.use(token_key, user_id).sessions_created += 1
        return session

    def session_of(self, user: User, session_id: str | None) -> Session | None:
        """The session if it exists, is not lost and belongs to ``user``; another user's is "not found"."""
        session = self.sessions.get(session_id) if session_id else None
        if session is None or session.lost or session.user_id != user.user_id:
            return None
        return session

    def session_dir(self, session_id: str) -> Path:
        return self.files_root / session_id
