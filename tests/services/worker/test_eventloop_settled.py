"""A warm shutdown cancels every stream on the event loop. A stream cut while its `prepare` ran in a database
thread must still see what `prepare` recorded (the turn marked `sending`) to take it back: `db_settled` makes the
cancel wait for the work, where plain `db` lets the cancel through while the work runs on unseen."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest

from services.worker.eventloop import LoopHost


def cut_while_running(method) -> bool:
    """Cancel a coroutine of ``method`` while its work runs; whether the work had finished when the cancel came."""
    loop, pool = asyncio.new_event_loop(), ThreadPoolExecutor(2)
    host = SimpleNamespace(loop=loop, pool=pool)
    started, finished = threading.Event(), threading.Event()

    def work() -> str:
        started.set()
        time.sleep(0.3)
        finished.set()
        return "recorded"

    async def main() -> bool:
        task = asyncio.ensure_future(method(host, work))
        await asyncio.to_thread(started.wait, 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return finished.is_set()

    try:
        return loop.run_until_complete(main())
    finally:
        pool.shutdown(wait=True)
        loop.close()


def test_a_cancel_waits_for_settled_work_to_finish() -> None:
    assert cut_while_running(LoopHost.db_settled) is True


def test_a_cancel_does_not_wait_for_plain_work() -> None:
    assert cut_while_running(LoopHost.db) is False, "plain db lets the cancel through at once"
