"""The simulator's FastAPI app: ``create_app(config)``; ``reelmill sim`` serves it on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from services.nemo_sim import admin, auth, messages, outputs, persist, renders, sessions, uploads
from services.nemo_sim.accounting import LedgerMiddleware
from services.nemo_sim.config import SimConfig
from services.nemo_sim.replies import SimReply
from services.nemo_sim.reset import capture
from services.nemo_sim.state import SimState

# A ``drop`` fault ends a response unfinished on purpose; uvicorn logs that as an error each time.
_DROP_NOISE = "ASGI callable returned without completing response."


class _QuietDrops(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg != _DROP_NOISE


class SimApp(FastAPI):
    """FastAPI that keeps each request's transport, so a fault can reset the connection (``reset.py``)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            capture(scope, send)
        await super().__call__(scope, receive, send)


async def _reply(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SimReply)
    return exc.response


def _lifespan(sim: SimState) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        saver = persist.StateSaver(sim) if sim.state_file is not None else None
        task = asyncio.create_task(saver.run()) if saver is not None else None
        if saver is not None:
            await saver.save()  # the file exists (and shows a restore's finished runs) from the start
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if saver is not None:
                await saver.save()  # with the runs in progress: the next start finishes them
            sim.stop_runs()
            sim.close()

    return lifespan


def create_app(config: SimConfig | None = None) -> FastAPI:
    """The app; with ``state_file`` set, the state is loaded from it (``persist.StateFileError`` if broken)."""
    sim = SimState(config if config is not None else SimConfig())
    persist.load(sim)
    app = SimApp(title="NemoVideo simulator", version="1", lifespan=_lifespan(sim))
    app.state.sim = sim
    app.add_exception_handler(SimReply, _reply)
    app.add_middleware(LedgerMiddleware)
    for module in (auth, sessions, uploads, messages, renders, outputs, admin):
        app.include_router(module.router)
    error_log = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _QuietDrops) for f in error_log.filters):
        error_log.addFilter(_QuietDrops())
    return app
