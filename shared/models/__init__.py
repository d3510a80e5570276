"""The table models. Importing this package registers every table on ``SQLModel.metadata``."""

from shared.models.batch import Batch, BatchRowError
from shared.models.credential import UpstreamCredential
from shared.models.enums import (
    ACTIVE_JOB_STATUSES,
    TERMINAL_JOB_STATUSES,
    BatchStatus,
    DeliveryStatus,
    JobStatus,
    MessageState,
    Stage,
    TurnStatus,
)
from shared.models.event import Delivery, DeliveryAttempt, Event, GoneEndpoint
from shared.models.job import Job, JobTurn
from shared.models.tenant import ApiKey, Tenant

__all__ = [
    "ACTIVE_JOB_STATUSES",
    "TERMINAL_JOB_STATUSES",
    "ApiKey",
    "Batch",
    "BatchRowError",
    "BatchStatus",
    "Delivery",
    "DeliveryAttempt",
    "DeliveryStatus",
    "Event",
    "GoneEndpoint",
    "Job",
    "JobStatus",
    "JobTurn",
    "MessageState",
    "Stage",
    "Tenant",
    "TurnStatus",
    "UpstreamCredential",
]
