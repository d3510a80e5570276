"""Queue and task names: short steps, long SSE streams, webhook deliveries and artifact copies never share a
queue."""

from __future__ import annotations

STEPS = "steps"  # every short flow step (one upstream call each) and render polls
STREAMS = "streams"  # SSE message streams, up to 15 minutes each
WEBHOOKS = "webhooks"  # webhook deliveries
ARTIFACTS = "artifacts"  # copies of render outputs into the artifact store (minutes for a big file)

ALL_QUEUES = (STEPS, STREAMS, WEBHOOKS, ARTIFACTS)

STREAM_STAGES = frozenset({"message"})  # flow stages that hold an SSE stream open

# task name -> queue; workers register the tasks under these names (services/worker/tasks.py)
TASK_ADVANCE = "reelmill.advance"
TASK_STREAM = "reelmill.stream"
TASK_DELIVER = "reelmill.deliver"
TASK_SWEEP = "reelmill.sweep"
TASK_MIRROR = "reelmill.mirror"
TASK_ROUTES: dict[str, str] = {
    TASK_ADVANCE: STEPS,
    TASK_STREAM: STREAMS,
    TASK_DELIVER: WEBHOOKS,
    TASK_SWEEP: STEPS,
    TASK_MIRROR: ARTIFACTS,
}
