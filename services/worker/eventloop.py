"""The streams worker's event loop: one asyncio loop per process, in a thread of its own, holding every message
stream the process runs (services/worker/streams.py), polling due renders in batches (polls.py) and sending parked
jobs when due (scheduler.py).

Celery still delivers the work: the `reelmill.stream` task claims its job in a worker thread and hands it to
`LoopHost.submit_stream`, which returns at once (it blocks only when the process already holds
`REELMILL_STREAMS_PER_PROCESS` streams, which leaves further messages in Redis for other processes). Database work
runs in a small pool of threads (`host.db`), so the loop never blocks on it. Live events (the agent's texts,
"still working") are buffered and written in bulk.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

from services.worker import lease, polls, runner, scheduler, streams
from shared.db import session_scope
from shared.domain.transitions import job_event
from shared.nemo.aclient import AsyncNemoClient
from shared.nemo.upstream import get_pace, paced_client
from shared.settings import get_settings
from shared.tables import Job

log = logging.getLogger(__name__)
T = TypeVar("T")
SCHEDULER_TICK_S = 0.25
EVENTS_FLUSH_S = 0.5
CANCEL_CHECK_S = 1.0
SLOTS_RENEW_S = 2.0


class EventBuffer:
    """Live events from the loop, written in one transaction every half second (and before a stream's outcome)."""

    def __init__(self, host: LoopHost) -> None:
        self.host = host
        self.items: list[tuple[Job, str, dict[str, Any]]] = []

    def add(self, job: Job, type_: str, data: dict[str, Any]) -> None:
        self.items.append((job, type_, data))

    async def flush(self) -> None:
        items, self.items = self.items, []
        if items:
            await self.host.db(_write_events, items)


def _write_events(items: list[tuple[Job, str, dict[str, Any]]]) -> None:
    with session_scope() as session:
        for job, type_, data in items:
            job_event(session, job, type_, data)


class LoopHost:
    def __init__(self) -> None:
        settings = get_settings()
        self.owner = lease.process_owner()
        self.loop = asyncio.new_event_loop()
        self.pool = ThreadPoolExecutor(settings.loop_db_threads, thread_name_prefix="loop-db")
        self.slots = threading.BoundedSemaphore(settings.streams_per_process)
        self.events = EventBuffer(self)
        self.streams: dict[str, asyncio.Task[None]] = {}
        self.stopping = False
        self.aclient: AsyncNemoClient | None = None
        self._background: list[asyncio.Task[None]] = []
        self._thread = threading.Thread(target=self._run, name="event-loop", daemon=True)

    # --- lifecycle (called from other threads) -------------------------------------------------------------

    def start(self) -> LoopHost:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(timeout=30)
        log.info("event loop started: streams, render polls, scheduler")
        return self

    def submit_stream(self, step: runner.Step) -> None:
        """Hold ``step``'s message stream on the loop (a Celery thread hands it over and returns)."""
        self.slots.acquire()
        lease.renewer.hold(step.ctx.job.id)
        asyncio.run_coroutine_threadsafe(self._hold(step), self.loop)

    def stop(self, grace_s: float = 10.0) -> None:
        """Stop taking work; hand every stream's job back (its lease released, so it is sent again at once)."""
        if not self._thread.is_alive():
            return
        future = asyncio.run_coroutine_threadsafe(self._stop(), self.loop)
        try:
            future.result(timeout=grace_s)
        except Exception as exc:  # the leases run out by themselves
            log.warning("event loop did not stop cleanly: %s", type(exc).__name__)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        self.pool.shutdown(wait=False, cancel_futures=True)

    # --- on the loop ---------------------------------------------------------------------------------------

    async def db(self, fn: Callable[..., T], *args: Any) -> T:
        """Run blocking (database) work off the loop."""
        return await self.loop.run_in_executor(self.pool, partial(fn, *args))

    async def db_settled(self, fn: Callable[..., T], *args: Any) -> T:
        """``db`` for work whose effect a cancel must be able to read: a cancel (a warm shutdown) waits for the
        work to finish in its thread before it is raised, so what the work recorded is known, never half-known."""
        work = self.loop.run_in_executor(self.pool, partial(fn, *args))
        try:
            return await asyncio.shield(work)
        except asyncio.CancelledError:
            await asyncio.wait([work])
            raise

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    async def _start(self) -> None:
        self.aclient = AsyncNemoClient(paced_client(), max_connections=get_settings().streams_per_process + 500)
        for every_s, job in (
            (SCHEDULER_TICK_S, self._scheduler_tick),
            (get_settings().poll_tick_s, self._poll_tick),
            (EVENTS_FLUSH_S, self.events.flush),
            (CANCEL_CHECK_S, self._cancel_tick),
            (SLOTS_RENEW_S, self._renew_slots),
        ):
            self._background.append(asyncio.create_task(_every(every_s, job)))

    async def _hold(self, step: runner.Step) -> None:
        job_id = step.ctx.job.id
        step.ctx.live_sink = self.events.add
        task = asyncio.current_task()
        assert task is not None
        self.streams[job_id] = task
        try:
            await streams.run_stream(step, self)
        except Exception:
            log.exception("stream of job %s failed outside its step; the sweeper resends it", job_id)
        finally:
            self.streams.pop(job_id, None)
            lease.renewer.release(job_id)
            self.slots.release()

    async def _scheduler_tick(self) -> None:
        await self.db(scheduler.tick, self.owner)

    async def _poll_tick(self) -> None:
        while await polls.poll_due(self) >= polls.BATCH:
            pass

    async def _cancel_tick(self) -> None:
        for job_id, task in list(self.streams.items()):
            if lease.renewer.cancel_requested(job_id):
                task.cancel()

    async def _renew_slots(self) -> None:
        """Keep the stream slots of every stream this process holds (a dead process's slots run out)."""
        if self.streams:
            await self.db(get_pace().renew, "streams", list(self.streams), get_settings().lease_s)

    async def _stop(self) -> None:
        self.stopping = True
        for task in self._background:
            task.cancel()
        held = list(self.streams.values())
        for task in held:
            task.cancel()
        await asyncio.gather(*held, return_exceptions=True)
        await self.events.flush()
        if self.aclient is not None:
            await self.aclient.aclose()


async def _every(seconds: float, job: Callable[[], Coroutine[Any, Any, Any]]) -> None:
    while True:
        try:
            await job()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s failed; trying again", getattr(job, "__name__", job))
        await asyncio.sleep(seconds)


_host: LoopHost | None = None
_lock = threading.Lock()


def host() -> LoopHost:
    """The process's event loop, started on first use."""
    global _host
    with _lock:
        if _host is None:
            _host = LoopHost().start()
        return _host


def stop_host(grace_s: float = 10.0) -> None:
    global _host
    with _lock:
        current, _host = _host, None
    if current is not None:
        current.stop(grace_s)
