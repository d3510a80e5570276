"""Webhook deliveries (shared/webhooks/deliveries.py builds the views) and the signing secret."""

from __future__ import annotations

from pydantic import Field

from services.api.schemas.base import Page, Public, Timestamp
from shared.tables.enums import DeliveryStatus


class AttemptPublic(Public):
    attempted_at: Timestamp | None
    status_code: int | None = Field(description="the receiver's HTTP status; null when it could not be reached")
    latency_ms: int | None
    response_excerpt: str | None
    error: str | None


class DeliveryPublic(Public):
    """One event sent to one URL, with its attempts (oldest first)."""

    id: str
    webhook_id: str = Field(description="the `webhook-id` header: the event's id, the same on every redelivery")
    event_type: str
    job_id: str | None
    batch_id: str | None
    url: str
    status: DeliveryStatus
    attempt_count: int
    last_status_code: int | None
    next_attempt_at: Timestamp | None
    created_at: Timestamp
    completed_at: Timestamp | None
    attempts: list[AttemptPublic]


class DeliveryPage(Page):
    data: list[DeliveryPublic]


class PreviousSecret(Public):
    secret: str
    expires_at: Timestamp


class WebhookSecret(Public):
    """The signing secret, and during a rotation the previous one (which keeps signing until `expires_at`)."""

    secret: str
    previous: PreviousSecret | None
