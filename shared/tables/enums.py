"""Status and stage vocabularies (str Enums, stored as their values)."""

from __future__ import annotations

from enum import StrEnum


class JobStatus(StrEnum):
    queued = "queued"
    starting = "starting"
    processing = "processing"
    succeeded = "succeeded"
    failed = "failed"
    canceled = "canceled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_JOB_STATUSES


TERMINAL_JOB_STATUSES = frozenset({JobStatus.succeeded, JobStatus.failed, JobStatus.canceled})
ACTIVE_JOB_STATUSES = frozenset({JobStatus.starting, JobStatus.processing})


class Stage(StrEnum):
    """Where a job is in the flow (services/worker/flow.py), in order."""

    queued = "queued"
    credential = "credential"
    session = "session"
    upload = "upload"
    message = "message"
    verify = "verify"
    credits = "credits"
    render_submit = "render_submit"
    render_poll = "render_poll"
    record = "record"
    done = "done"
    throttled = "throttled"  # waiting in the database for NemoVideo capacity; `resume_stage` says what runs next


class TurnStatus(StrEnum):
    pending = "pending"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    canceled = "canceled"


class MessageState(StrEnum):
    pending = "pending"  # not sent yet
    sending = "sending"  # a send began; after a crash, read the session state before sending again
    sent = "sent"  # landed (stream read, or the state shows the edit)
    skipped = "skipped"  # an intent that needs no SSE call


class BatchStatus(StrEnum):
    queued = "queued"
    running = "running"
    paused = "paused"
    completed = "completed"
    canceled = "canceled"


class DeliveryStatus(StrEnum):
    pending = "pending"
    succeeded = "succeeded"
    failed = "failed"  # the schedule ran out
    gone = "gone"  # the receiver answered 410: no more deliveries to that URL
