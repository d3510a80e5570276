"""The simulator's FastAPI app: ``create_app(config)``; ``reelmill sim`` serves it on loopback."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from services.nemo_sim import admin, auth, messages, outputs, renders, sessions, uploads
from services.nemo_sim.accounting import LedgerMiddleware
from services.nemo_sim.config import SimConfig
from services.nemo_sim.replies import SimReply
from services.nemo_sim.state import SimState

# A ``drop`` fault ends a response unfinished on purpose; uvicorn logs that as an error each time.
_DROP_NOISE = "ASGI callable returned without completing response."


class _QuietDrops(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg != _DROP_NOISE


async def _reply(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SimReply)
    return exc.response


def create_app(config: SimConfig | None = None) -> FastAPI:
    sim = SimState(config if config is not None else SimConfig())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        sim.reset()
        sim.close()

    app = FastAPI(title="NemoVideo simulator", version="1", lifespan=lifespan)
    app.state.sim = sim
    app.add_exception_handler(SimReply, _reply)
    app.add_middleware(LedgerMiddleware)
    for module in (auth, sessions, uploads, messages, renders, outputs, admin):
        app.include_router(module.router)
    error_log = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _QuietDrops) for f in error_log.filters):
        error_log.addFilter(_QuietDrops())
    return app
