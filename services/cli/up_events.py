"""One terminal line per job event worth seeing, for `reelmill up`: read from the outbox (the events table), so
it shows what every worker did, in order, without touching the workers' logs."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from sqlmodel import func, select

from shared.db import session_scope
from shared.tables.event import Event

log = logging.getLogger(__name__)
SHOWN = ("job.started", "job.succeeded", "job.failed", "job.canceled", "batch.completed")
POLL_S = 1.0
PROMPT_CHARS = 60


def describe(event: Event) -> str | None:
    """The line for one event, or None for events not worth a line."""
    data: dict[str, Any] = event.data or {}
    if event.type not in SHOWN:
        return None
    if event.type == "batch.completed":
        counts = data.get("counts") or {}
        figures = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()) if n)
        return f"batch {event.batch_id or data.get('id', '?')} completed" + (f": {figures}" if figures else "")
    what = event.type.removeprefix("job.")
    line = f"job {event.job_id} {what}"
    if event.type == "job.started":
        prompt = " ".join(str(data.get("prompt") or "").split())
        short = prompt if len(prompt) <= PROMPT_CHARS else prompt[: PROMPT_CHARS - 1] + "…"
        return f"{line}: {short!r}" if short else line
    if event.type == "job.succeeded":
        url = (data.get("output") or {}).get("url")
        return f"{line} {url}" if url else line
    error = data.get("error") or {}
    if error:
        return f"{line}: {error.get('code', '')} {error.get('message', '')}".rstrip()
    return line


def last_seq() -> int:
    with session_scope() as session:
        return int(session.exec(select(func.max(Event.seq))).one() or 0)


def new_events(after: int, limit: int = 500) -> list[Event]:
    with session_scope() as session:
        rows = session.exec(select(Event).where(Event.seq > after).order_by(Event.seq).limit(limit)).all()
        for row in rows:
            session.expunge(row)
        return list(rows)


class EventTail:
    """A thread that prints the lines of new events until stopped."""

    def __init__(self, say: Callable[[str], None], stop: threading.Event) -> None:
        self.say, self.stop = say, stop
        self.after = last_seq()
        self.thread = threading.Thread(target=self._run, name="event-tail", daemon=True)

    def start(self) -> EventTail:
        self.thread.start()
        return self

    def _run(self) -> None:
        while not self.stop.wait(POLL_S):
            try:
                self.poll()
            except Exception as exc:  # the database may be busy or going away at stop; try again
                log.debug("event tail: %s", type(exc).__name__)

    def poll(self) -> None:
        for event in new_events(self.after):
            self.after = max(self.after, event.seq or 0)
            line = describe(event)
            if line:
                self.say(line)
