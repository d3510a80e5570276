"""Liveness (`/healthz`: the process answers) and readiness (`/readyz`: database and Redis reachable).

`/healthz` runs on the event loop itself: it needs no thread, so it answers even when every worker thread of the
API is busy or stuck.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy import text

from services.api.schemas.misc import Health, Ready
from shared.db import reader_engine
from shared.redis_conn import get_redis

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness")
async def healthz() -> Health:
    return Health(status="ok")


def _check_db() -> str | None:
    try:
        with reader_engine().connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        return type(exc).__name__
    return None


def _check_redis() -> str | None:
    try:
        get_redis().ping()
    except Exception as exc:
        return type(exc).__name__
    return None


@router.get(
    "/readyz",
    summary="Readiness: database and Redis reachable",
    response_model=Ready,
    responses={503: {"model": Ready, "description": "Not ready: `checks` names what cannot be reached"}},
)
async def readyz() -> JSONResponse:
    db, redis = await run_in_threadpool(_check_db), await run_in_threadpool(_check_redis)
    checks: dict[str, Any] = {"database": db or "ok", "redis": redis or "ok"}
    ready = db is None and redis is None
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks}, status_code=200 if ready else 503
    )
