"""Redis key names of the pace, all under ``reelmill:pace:<credential>:``.

| key               | type   | holds                                                                  |
|-------------------|--------|------------------------------------------------------------------------|
| ``epoch``         | string | present while the state is whole; gone after a flush or a restart     |
| ``slots:<res>``   | zset   | holders of a resource: member = job id, score = expiry (epoch seconds) |
| ``aimd``          | hash   | per class: ``rate:``, ``cap:``, ``pause:`` (until), ``rok:``/``cok:`` success counts |
| ``gcra``          | hash   | theoretical arrival times: ``tat:*`` (all calls) and ``tat:<class>``  |
| ``stats``         | hash   | per class: ``429:`` seen and ``throttled:`` refusals                   |
| ``line:<res>``    | string | present while jobs wait in the scheduler's line for the resource (TTL) |
| ``released``      | set    | ``<res>:<holder>`` released while the state was missing (tombstones)   |
| ``rebuild-lock``  | string | the token of the process rebuilding the state                          |

``reelmill:pace:credentials`` (a set) lists the credentials whose state has been built, for /metrics.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.pace.config import RESOURCE_CLASS

ROOT = "reelmill:pace"
REGISTRY = f"{ROOT}:credentials"


@dataclass(frozen=True)
class Keys:
    credential: str

    @property
    def prefix(self) -> str:
        return f"{ROOT}:{self.credential}"

    @property
    def epoch(self) -> str:
        return f"{self.prefix}:epoch"

    def slots(self, resource: str) -> str:
        return f"{self.prefix}:slots:{resource}"

    def line(self, resource: str) -> str:
        return f"{self.prefix}:line:{resource}"

    @property
    def all_slots(self) -> list[str]:
        return [self.slots(res) for res in RESOURCE_CLASS]

    @property
    def aimd(self) -> str:
        return f"{self.prefix}:aimd"

    @property
    def gcra(self) -> str:
        return f"{self.prefix}:gcra"

    @property
    def stats(self) -> str:
        return f"{self.prefix}:stats"

    @property
    def released(self) -> str:
        return f"{self.prefix}:released"

    @property
    def rebuild_lock(self) -> str:
        return f"{self.prefix}:rebuild-lock"
