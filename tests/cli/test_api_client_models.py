"""The CLI reads jobs and batches with the API's own response models: a reply that drifts from them is an error
that names the field, not a KeyError three commands later."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from services.api.schemas.batches import BatchPublic
from services.api.schemas.jobs import JobPublic
from services.cli.api_client import EXIT_FAILED, ApiClient, ApiError
from services.cli.batch import counts_of, outcome, summary_line

BATCH: dict[str, Any] = {
    "id": "bat_1",
    "status": "completed",
    "total": 3,
    "counts": {"queued": 0, "starting": 0, "processing": 0, "succeeded": 2, "failed": 1, "canceled": 0},
    "skipped": 0,
    "max_in_flight": 50,
    "on_error": "reject",
    "webhook": None,
    "webhook_events_filter": [],
    "paused_reason": None,
    "created_at": "2026-11-30T15:00:00Z",
    "completed_at": "2026-11-30T15:01:00Z",
    "urls": {k: f"http://api/v1/batches/bat_1/{k}" for k in ("get", "jobs", "results", "cancel", "resume", "retry")},
    "retry_of": None,
    "retried_by": None,
}


def client_answering(body: dict[str, Any]) -> ApiClient:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=body))
    return ApiClient("http://api.test", "key", transport=transport)


def test_a_batch_is_read_as_the_api_model() -> None:
    batch = client_answering(BATCH).get_batch("bat_1")
    assert isinstance(batch, BatchPublic) and batch.counts.succeeded == 2
    assert counts_of(batch) == (3, 1, 0, 3) and outcome(batch) == EXIT_FAILED
    assert summary_line(batch).startswith("batch bat_1 completed: 2 succeeded, 1 failed, 0 canceled")


def test_a_reply_that_drifted_from_the_model_is_an_error_naming_the_field() -> None:
    drifted = {**BATCH, "counts": {**BATCH["counts"]}}
    del drifted["counts"]["succeeded"]
    with pytest.raises(ApiError) as caught:
        client_answering(drifted).get_batch("bat_1")
    assert "BatchPublic" in caught.value.message and "counts.succeeded" in caught.value.message
    assert caught.value.exit_code == EXIT_FAILED


def test_a_job_missing_its_status_is_refused() -> None:
    with pytest.raises(ApiError) as caught:
        client_answering({"id": "job_1"}).get_job("job_1")
    assert "JobPublic" in caught.value.message
    assert JobPublic.model_fields["status"].is_required()
