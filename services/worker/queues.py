"""Queue names and task routes: short steps, long SSE streams and webhook deliveries never share a queue."""

from __future__ import annotations

STEPS = "steps"  # every short flow step (one upstream call each) and render polls
STREAMS = "streams"  # SSE message streams, up to 15 minutes each
WEBHOOKS = "webhooks"  # webhook deliveries (15 s timeout each)

ALL_QUEUES = (STEPS, STREAMS, WEBHOOKS)

STREAM_STAGES = frozenset({"message"})  # flow stages that hold an SSE stream open


def queue_for_stage(stage: str) -> str:
    return STREAMS if stage in STREAM_STAGES else STEPS
