"""The pace's part of `/metrics`: per upstream credential, what its limiter in Redis holds now (shared/pace).

One snapshot script per credential (a handful of Redis reads, no database): streams and renders holding a slot,
the effective caps and rates AIMD allows and the configured ones, the seconds a paused class still waits, and the
counters the limiter keeps (429s answered, throttle waits). The counters live in the pace's `stats` hash, so a
Redis flush resets them (Prometheus reads that as a counter reset).
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from shared.nemo.upstream import CREDENTIAL
from shared.pace import CLASSES, RESOURCE_CLASS, Limiter, PaceConfig, PaceSnapshot, known_credentials
from shared.redis_conn import get_redis
from shared.settings import get_settings


def snapshots() -> list[PaceSnapshot]:
    """The deployment's credential always (zeros before its first call), and any other the pace has seen."""
    client = get_redis()
    config = PaceConfig.from_settings(get_settings())
    credentials = sorted({CREDENTIAL, *known_credentials(client)})
    found = [Limiter(client, credential, config).snapshot() for credential in credentials]
    return [snap for snap in found if snap.available]


def pace_metrics() -> Iterator[Metric]:
    snaps = snapshots()
    by_resource = ["credential", "resource"]
    by_class = ["credential", "class"]
    in_flight = GaugeMetricFamily(
        "reelmill_upstream_in_flight", "Upstream streams / renders holding a slot of the pace", labels=by_resource
    )
    cap = GaugeMetricFamily("reelmill_upstream_cap", "Concurrency cap AIMD allows now", labels=by_resource)
    max_cap = GaugeMetricFamily("reelmill_upstream_max_cap", "Configured concurrency cap", labels=by_resource)
    rate = GaugeMetricFamily("reelmill_upstream_rate", "Calls per second AIMD allows now, per class", labels=by_class)
    max_rate = GaugeMetricFamily(
        "reelmill_upstream_max_rate", "Configured calls per second, all classes together", labels=["credential"]
    )
    pause = GaugeMetricFamily(
        "reelmill_upstream_pause_seconds", "Seconds until a class paused by a 429 may call again", labels=by_class
    )
    limited = CounterMetricFamily("reelmill_upstream_rate_limited", "429 answers from NemoVideo", labels=by_class)
    throttled = CounterMetricFamily(
        "reelmill_upstream_throttled", "Throttle waits: a job told to wait (cap full, rate, pause)", labels=by_class
    )
    for snap in snaps:
        who = snap.credential
        max_rate.add_metric([who], snap.max_rps)
        for resource in RESOURCE_CLASS:
            in_flight.add_metric([who, resource], snap.in_flight.get(resource, 0))
            cap.add_metric([who, resource], snap.caps.get(resource, 0))
            max_cap.add_metric([who, resource], snap.max_caps.get(resource, 0))
        for cls in CLASSES:
            rate.add_metric([who, cls], snap.rates.get(cls, 0.0))
            pause.add_metric([who, cls], snap.pause_remaining.get(cls, 0.0))
            limited.add_metric([who, cls], snap.rate_limited.get(cls, 0))
            throttled.add_metric([who, cls], snap.throttled.get(cls, 0))
    yield from (in_flight, cap, max_cap, rate, max_rate, pause, limited, throttled)
