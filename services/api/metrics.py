"""`GET /metrics` in Prometheus' text format.

Gauges come from the truth (the database) and the queues (Redis list lengths); counters and step durations come
from what every worker recorded in Redis (shared/metrics.py), so one scrape of any API replica sees the whole
service.

The database gauges are three GROUP BYs over whole tables: they are computed at most once per
`metrics_refresh_s` for the whole deployment (the figures are kept in Redis, and a lock lets one replica compute
them while the others serve the last figures), so scraping often, or by many scrapers, adds no database load.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from sqlalchemy import func
from sqlmodel import select

from shared import metrics
from shared.db import read_session
from shared.redis_conn import get_redis
from shared.settings import get_settings
from shared.tables import ACTIVE_JOB_STATUSES, Batch, Delivery, Job, JobStatus
from shared.taskq.queues import ALL_QUEUES

router = APIRouter(tags=["health"])
log = logging.getLogger(__name__)
FRESH_KEY = f"{metrics.PREFIX}:db_gauges"  # expires after metrics_refresh_s
LAST_KEY = f"{metrics.PREFIX}:db_gauges:last"  # kept: served while another replica computes
LOCK_KEY = f"{metrics.PREFIX}:db_gauges:lock"
LOCK_S = 60

Counts = dict[str, dict[str, int]]


def query_counts() -> Counts:
    """The database's figures: jobs, batches and deliveries by status (the expensive part of a scrape)."""
    with read_session() as session:
        return {
            "jobs": dict(session.exec(select(Job.status, func.count()).group_by(Job.status)).all()),
            "batches": dict(session.exec(select(Batch.status, func.count()).group_by(Batch.status)).all()),
            "deliveries": dict(session.exec(select(Delivery.status, func.count()).group_by(Delivery.status)).all()),
        }


def database_counts() -> Counts:
    """`query_counts`, at most once per `metrics_refresh_s` across every replica."""
    redis = get_redis()
    fresh = redis.get(FRESH_KEY)
    if fresh is not None:
        return json.loads(fresh)
    locked = bool(redis.set(LOCK_KEY, "1", nx=True, ex=LOCK_S))
    if not locked and (last := redis.get(LAST_KEY)) is not None:
        return json.loads(last)
    try:
        counts = query_counts()
        text = json.dumps(counts)
        pipe = redis.pipeline(transaction=False)
        pipe.set(FRESH_KEY, text, px=max(1, int(get_settings().metrics_refresh_s * 1000)))
        pipe.set(LAST_KEY, text)
        pipe.execute()
        return counts
    finally:
        if locked:
            redis.delete(LOCK_KEY)


class ServiceCollector:
    def collect(self) -> Iterator[Metric]:
        yield from self._database()
        yield from self._queues()
        yield from self._recorded()

    def _database(self) -> Iterator[Metric]:
        counts = database_counts()
        jobs, batches, deliveries = counts["jobs"], counts["batches"], counts["deliveries"]
        by_status = GaugeMetricFamily("reelmill_jobs", "Jobs by status", labels=["status"])
        for status in JobStatus:
            by_status.add_metric([status.value], jobs.get(status.value, 0))
        yield by_status
        in_flight = sum(jobs.get(s.value, 0) for s in ACTIVE_JOB_STATUSES)
        yield GaugeMetricFamily(
            "reelmill_jobs_in_flight", "Jobs a worker is running (starting or processing)", value=in_flight
        )
        batch_gauge = GaugeMetricFamily("reelmill_batches", "Batches by status", labels=["status"])
        for status, count in sorted(batches.items()):
            batch_gauge.add_metric([status], count)
        yield batch_gauge
        dl = GaugeMetricFamily("reelmill_webhook_deliveries", "Webhook deliveries by status", labels=["status"])
        for status, count in sorted(deliveries.items()):
            dl.add_metric([status], count)
        yield dl

    def _queues(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily("reelmill_queue_depth", "Messages waiting in each queue", labels=["queue"])
        redis = get_redis()
        for queue in ALL_QUEUES:
            depth.add_metric([queue], redis.llen(queue))
        yield depth

    def _recorded(self) -> Iterator[Metric]:
        errors = CounterMetricFamily("reelmill_upstream_errors", "Upstream errors by code", labels=["code"])
        for code, count in sorted(metrics.read_hash("upstream_errors").items()):
            errors.add_metric([code], count)
        yield errors
        outcomes = CounterMetricFamily(
            "reelmill_webhook_attempts", "Webhook delivery attempts by outcome", labels=["outcome"]
        )
        for outcome, count in sorted(metrics.read_hash("deliveries").items()):
            outcomes.add_metric([outcome], count)
        yield outcomes
        steps = HistogramMetricFamily("reelmill_step_duration_seconds", "Flow step durations", labels=["stage"])
        for stage, fields in metrics.read_steps().items():
            buckets = [(str(b), fields.get(f"le_{b}", 0.0)) for b in metrics.STEP_BUCKETS]
            buckets.append(("+Inf", fields.get("count", 0.0)))
            steps.add_metric([stage], buckets, sum_value=fields.get("sum", 0.0))
        yield steps


def render() -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ServiceCollector())
    return generate_latest(registry)


@router.get(
    "/metrics",
    summary="Prometheus metrics (text exposition format)",
    response_class=PlainTextResponse,
    responses={200: {"description": "The metrics", "content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def metrics_endpoint() -> Response:
    return Response(await run_in_threadpool(render), media_type=CONTENT_TYPE_LATEST)
