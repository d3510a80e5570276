"""The intake API: `create_app()` builds it (uvicorn `--factory`); OpenAPI at /docs."""

from __future__ import annotations

from fastapi import FastAPI

from services.api import errors, metrics
from services.api.routes import batches, credits, health, job_live, jobs, outputs, webhooks
from shared.taskq.celery import install_celery_dispatcher


def create_app() -> FastAPI:
    app = FastAPI(
        title="reelmill",
        version="0.1.0",
        description="Turn prompts, scripts, clips and images into 1080p MP4 videos through NemoVideo, at scale.",
    )
    errors.install(app)
    for module in (health, metrics, jobs, job_live, outputs, credits, webhooks, batches):
        app.include_router(module.router)
    install_celery_dispatcher()
    return app
