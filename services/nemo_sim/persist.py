"""The state file (``--state-file`` / ``REELMILL_SIM_STATE_FILE``): what a restart of the simulator keeps.

Kept: users, tokens, credits, sessions with their drafts, messages and uploads (files next to the state file,
in ``<state file>.files/``), renders, the link-signing secret, the mint windows, the decision generator, and
the agent runs in progress. Not kept: faults, counters of requests and capacity, and run-time config changes
(the config comes from the environment and options at each start).

Written atomically (a temporary file in the same directory, fsync, rename), mode 0600, ``state_save_delay_s``
after a change (changes meanwhile are coalesced) and once more at shutdown. Loaded at start: a render in
progress goes on by the wall clock; an agent run in progress is finished at once (its edit applied, its
credits spent), because the real agent works server-side whether or not anyone is connected.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections import deque
from dataclasses import asdict
from pathlib import Path
from typing import Any

import anyio

from services.nemo_sim.drafts import apply_message
from services.nemo_sim.records import Render, Session, Token, User
from services.nemo_sim.state import SimState

FORMAT = 1


class StateFileError(Exception):
    """The state file exists but cannot be loaded."""


def snapshot(sim: SimState) -> dict[str, Any]:
    """Everything the state file keeps, as JSON-ready data (taken on the event loop: consistent)."""
    version, internal, gauss = sim.rng.getstate()
    return {
        "format": FORMAT,
        "secret": sim.secret.hex(),
        "users": [asdict(user) for user in sim.users.values()],
        "tokens": [{"token": token, **asdict(record)} for token, record in sim.tokens.items()],
        "sessions": [asdict(session) for session in sim.sessions.values()],
        "renders": [asdict(render) for render in sim.renders.values()],
        "mints": {client: list(times) for client, times in sim.mints.items()},
        "rng": [version, list(internal), gauss],
        "runs": [
            {
                "session_id": run.session.session_id,
                "user_id": run.user.user_id,
                "prompt": run.prompt,
                "cost": run.cost,
                "edited": run.edited,
            }
            for run in sim.active_runs.values()
        ],
        "output_sha": dict(sim.output_sha),
    }


def encode(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` at once (readers see the old file or the new one), mode 0600."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    with contextlib.suppress(OSError):  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def save_now(sim: SimState) -> None:
    assert sim.state_file is not None
    sim.state_file.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(sim.state_file, encode(snapshot(sim)))


def load(sim: SimState) -> bool:
    """Restore ``sim`` from its state file; False when there is none yet. ``StateFileError`` if unreadable."""
    path = sim.state_file
    if path is None or not path.exists():
        return False
    try:
        doc = json.loads(path.read_bytes())
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise ValueError(f"format {doc.get('format') if isinstance(doc, dict) else None!r}, want {FORMAT}")
        restore(sim, doc)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise StateFileError(f"{path}: cannot load the simulator's state ({exc})") from exc
    return True


def restore(sim: SimState, doc: dict[str, Any]) -> None:
    sim.secret = bytes.fromhex(doc["secret"])
    sim.users = {u["user_id"]: User(**u) for u in doc["users"]}
    sim.tokens = {t.pop("token"): Token(**t) for t in doc["tokens"]}
    sim.sessions = {s["session_id"]: Session(**{**s, "runs_in_progress": 0}) for s in doc["sessions"]}
    sim.renders = {r["render_id"]: Render(**r) for r in doc["renders"]}
    sim.mints = {client: deque(times) for client, times in doc["mints"].items()}
    version, internal, gauss = doc["rng"]
    sim.rng.setstate((version, tuple(internal), gauss))
    sim.output_sha = dict(doc.get("output_sha", {}))
    for session in sim.sessions.values():
        if session.token_key is not None:
            sim.capacity.use(session.token_key, session.user_id).sessions_created += 1
    for render in sim.renders.values():
        if render.token_key is not None:
            sim.capacity.use(render.token_key, render.user_id).renders[render.render_id] = render
    for run in doc["runs"]:
        finish_run(sim, run)


def finish_run(sim: SimState, run: dict[str, Any]) -> None:
    """An agent run that was in progress at shutdown: its edit lands (if it had not), its credits are spent."""
    session, user = sim.sessions.get(run["session_id"]), sim.users.get(run["user_id"])
    if session is not None and not run["edited"]:
        apply_message(session, run["prompt"], sim.rng)
    if user is not None:
        sim.spend(user, int(run["cost"]))


class StateSaver:
    """Writes the state file ``state_save_delay_s`` after a change, coalescing the changes meanwhile."""

    def __init__(self, sim: SimState) -> None:
        self.sim = sim
        self.changed = sim.changed = asyncio.Event()

    async def run(self) -> None:
        while True:
            await self.changed.wait()
            await asyncio.sleep(self.sim.config.state_save_delay_s)
            self.changed.clear()
            await self.save()

    async def save(self) -> None:
        sim = self.sim
        assert sim.state_file is not None
        data = encode(snapshot(sim))  # on the loop, so no mutation interleaves
        await anyio.to_thread.run_sync(write_atomic, sim.state_file, data)
