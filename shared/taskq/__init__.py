"""The task queue as both sides see it: queue and task names (``queues``), and the Celery app that producers
(the API, the CLI, the sweeper) and workers share (``celery``). Nothing here imports the worker package: the API
sends tasks by name."""
