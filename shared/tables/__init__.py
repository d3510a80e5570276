"""The database tables. Importing this package registers every table on ``SQLModel.metadata``."""

from shared.tables.artifact import Artifact, ArtifactStatus
from shared.tables.batch import Batch, BatchRowError
from shared.tables.credential import UpstreamCredential
from shared.tables.enums import (
    ACTIVE_JOB_STATUSES,
    TERMINAL_JOB_STATUSES,
    BatchStatus,
    DeliveryStatus,
    JobStatus,
    MessageState,
    Stage,
    TurnStatus,
)
from shared.tables.event import Delivery, DeliveryAttempt, Event, GoneEndpoint
from shared.tables.job import Job, JobTurn
from shared.tables.tenant import ApiKey, Tenant

__all__ = [
    "ACTIVE_JOB_STATUSES",
    "TERMINAL_JOB_STATUSES",
    "ApiKey",
    "Artifact",
    "ArtifactStatus",
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
