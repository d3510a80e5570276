"""Upstream pace (issue 14): one limiter per NemoVideo credential shared by every worker, and fair shares.

- `limiter.Limiter`: concurrent ``streams`` / ``renders`` caps, calls per second by class, AIMD after 429s,
  rebuilt from the database after a Redis flush. `snapshot.PaceSnapshot` is what /metrics shows of it.
- `fair.pick`: deficit round robin over tenants (pure); `fair_store.DrrStore` keeps its state in Redis.

Nothing here runs at import: the engine builds a limiter per process and passes what it needs.
"""

from shared.pace.config import CLASSES, RESOURCE_CLASS, PaceConfig
from shared.pace.grant import Grant, Reason
from shared.pace.limiter import Limiter, Rebuild, known_credentials
from shared.pace.snapshot import PaceSnapshot

__all__ = [
    "CLASSES",
    "RESOURCE_CLASS",
    "Grant",
    "Limiter",
    "PaceConfig",
    "PaceSnapshot",
    "Reason",
    "Rebuild",
    "known_credentials",
]
