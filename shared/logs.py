"""JSON logs with the job id in every line, and secrets redacted whatever the caller passed.

`job_context(job_id)` sets the id for everything logged inside it (threads each have their own).
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from shared.settings import get_settings

_job_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("reelmill_job_id", default=None)

# Upstream tokens, our API keys, webhook secrets, and any "Bearer <x>" or "token=<x>" that slipped into a message.
_SECRET_PATTERNS = [
    re.compile(r"nmv_[A-Za-z0-9_\-]{6,}"),
    re.compile(r"rm_(live|test)_[A-Za-z0-9_\-]{6,}"),
    re.compile(r"whsec_[A-Za-z0-9+/=_\-]{6,}"),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=\-]{6,}"),
    re.compile(r"(?i)((?:token|secret|password|api_key)[\"']?\s*[:=]\s*[\"']?)[^\s\"',}]{4,}"),
    # the password of a URL: redis://:pw@host, postgresql://user:pw@host
    re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://[^:/@\s]*:)[^@\s/]+(?=@)"),
]


def redact(text: str) -> str:
    for pattern in _SECRET_PATTERNS:
        if pattern.groups:
            text = pattern.sub(lambda m: m.group(1) + "[redacted]", text)
        else:
            text = pattern.sub("[redacted]", text)
    return text


@contextmanager
def job_context(job_id: str | None) -> Iterator[None]:
    token = _job_id.set(job_id)
    try:
        yield
    finally:
        _job_id.reset(token)


class RedactingFilter(logging.Filter):
    """Redacts the rendered message of every record that passes through a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        if getattr(record, "job_id", None) is None:
            record.job_id = _job_id.get()
        return True


class JsonFormatter(logging.Formatter):
    def __init__(self, role: str) -> None:
        super().__init__()
        self.role = role

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "role": self.role,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if getattr(record, "job_id", None):
            doc["job_id"] = record.job_id
        if record.exc_text:
            doc["exc"] = record.exc_text
        return json.dumps(doc, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        job = f" [{record.job_id}]" if getattr(record, "job_id", None) else ""
        line = f"{self.formatTime(record, '%H:%M:%S')} {record.levelname:<7} {record.name}{job}: {record.getMessage()}"
        return f"{line}\n{record.exc_text}" if record.exc_text else line


def make_handler(role: str) -> logging.Handler:
    settings = get_settings()
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(JsonFormatter(role) if settings.log_json else TextFormatter())
    return handler


_role = "other"


def role() -> str:
    """This process's role (api, worker, beat...), once `configure_logging` named it."""
    return _role


def configure_logging(role: str) -> None:
    """Route every logger (ours, Celery's, uvicorn's, httpx's) through one redacting handler."""
    global _role
    _role = role
    settings = get_settings()
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(make_handler(role))
    root.setLevel(settings.log_level.upper())
    # httpx logs every request URL at INFO; ours are logged by the client, without secrets.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)


def uvicorn_log_config() -> dict[str, Any]:
    """Let uvicorn's loggers propagate to the root handler configured above (no second format)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "loggers": {
            "uvicorn": {"level": "INFO", "propagate": True},
            "uvicorn.error": {"level": "INFO", "propagate": True},
            "uvicorn.access": {"level": "WARNING", "propagate": True},
        },
    }
