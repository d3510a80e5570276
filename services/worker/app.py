"""The worker's Celery application (`celery -A services.worker.app`): the shared configuration
(shared/taskq/celery.py) plus this package's tasks."""

from __future__ import annotations

from shared.settings import get_settings
from shared.taskq.celery import create_celery

celery_app = create_celery(get_settings(), include=["services.worker.tasks"])
app = celery_app
