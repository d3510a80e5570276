"""The intake API: `create_app()` builds it (uvicorn `--factory`); the document at /openapi.json, its UI at /docs."""

from __future__ import annotations

from fastapi import FastAPI

from services.api import docs_ui, errors, metrics, openapi
from services.api.perimeter import Perimeter
from services.api.routes import batches, credits, health, job_live, jobs, outputs, webhooks
from shared.domain.job_input import JobSpec
from shared.taskq.celery import install_celery_dispatcher


def create_app() -> FastAPI:
    app = FastAPI(
        title="reelmill",
        version="0.1.0",
        description="Turn prompts, scripts, clips and images into 1080p MP4 videos through NemoVideo, at scale.",
        docs_url=None,  # served from the swagger-ui-bundle package instead of a CDN (docs_ui.py)
        redoc_url=None,
    )
    errors.install(app)
    app.add_middleware(Perimeter)  # authentication and body limits before any route reads a byte of the body
    for module in (health, metrics, jobs, job_live, outputs, credits, webhooks, batches):
        app.include_router(module.router)
    openapi.install(app, [JobSpec, job_live.MessageIn])
    docs_ui.install(app)
    install_celery_dispatcher()
    return app
