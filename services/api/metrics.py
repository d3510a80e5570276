"""`GET /metrics` in Prometheus' text format.

Gauges come from the truth (the database) and the queues (Redis list lengths); counters and step durations come
from what every worker recorded in Redis (shared/metrics.py), so one scrape of any API replica sees the whole
service.

The pace of each upstream credential (streams and renders in flight, rates, 429s, throttle waits) is read from
its limiter's state in Redis (services/api/metrics_pace.py). The database gauges are four GROUP BYs (the fourth:
per tenant with jobs waiting to start, how many and the oldest's age): they are computed at most once per
`metrics_refresh_s` for the whole deployment (the figures are kept in Redis, and a lock lets one replica compute
them while the others serve the last figures), so scraping often, or by many scrapers, adds no database load.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from sqlalchemy import func
from sqlmodel import select

from services.api.metrics_pace import pace_metrics
from shared import metrics
from shared.db import read_session
from shared.domain.tenant_shares import waiting_by_tenant
from shared.redis_conn import get_redis
from shared.settings import get_settings
from shared.tables import ACTIVE_JOB_STATUSES, Batch, Delivery, Job, JobStatus
from shared.taskq.queues import ALL_QUEUES
from shared.timeutil import as_utc

router = APIRouter(tags=["health"])
log = logging.getLogger(__name__)
FRESH_KEY = f"{metrics.PREFIX}:db_gauges"  # expires after metrics_refresh_s
LAST_KEY = f"{metrics.PREFIX}:db_gauges:last"  # kept: served while another replica computes
LOCK_KEY = f"{metrics.PREFIX}:db_gauges:lock"
LOCK_S = 60

Counts = dict[str, dict[str, Any]]


def query_counts() -> Counts:
    """The database's figures: jobs, batches and deliveries by status, and per tenant with jobs waiting to start
    how many and since when (epoch seconds of the oldest: its age is taken at each scrape). The expensive part of a
    scrape."""
    with read_session() as session:
        waiting = waiting_by_tenant(session)
        return {
            "jobs": dict(session.exec(select(Job.status, func.count()).group_by(Job.status)).all()),
            "batches": dict(session.exec(select(Batch.status, func.count()).group_by(Batch.status)).all()),
            "deliveries": dict(session.exec(select(Delivery.status, func.count()).group_by(Delivery.status)).all()),
            "tenants_waiting": {name: [n, as_utc(oldest).timestamp()] for name, (n, oldest) in waiting.items()},
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
        yield from pace_metrics()

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
        yield from _tenants(counts.get("tenants_waiting", {}))  # absent in figures cached by an older replica

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


def _tenants(waiting: dict[str, list[float]]) -> Iterator[Metric]:
    """Per tenant with jobs waiting to start (no others: the label's values stay the busy tenants)."""
    depth = GaugeMetricFamily(
        "reelmill_tenant_queued_jobs", "Jobs waiting to start, per tenant with any", labels=["tenant"]
    )
    age = GaugeMetricFamily(
        "reelmill_tenant_oldest_queued_seconds", "Age of the tenant's oldest job waiting to start", labels=["tenant"]
    )
    now = time.time()
    for tenant, (count, oldest) in sorted(waiting.items()):
        depth.add_metric([tenant], count)
        age.add_metric([tenant], max(0.0, now - oldest))
    yield depth
    yield age


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
