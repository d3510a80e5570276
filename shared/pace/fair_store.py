"""The DRR state in Redis: one hash (``reelmill:fair:<scope>``) that the dispatcher loads and saves.

`save` is a compare-and-set on a version, so two dispatchers that raced cannot silently overwrite each other's
turn: the loser's save returns False and it should load and pick again (or simply skip this round). The state is
soft: if it is lost, `load` returns an empty state and fairness restarts from the next round.
"""

from __future__ import annotations

import json
import logging

import redis

from shared.pace.fair import DrrState

log = logging.getLogger(__name__)

_SAVE = """
if (redis.call('HGET', KEYS[1], 'v') or '0') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'v', tonumber(ARGV[1]) + 1, 'ring', ARGV[2], 'deficits', ARGV[3], 'in_visit', ARGV[4])
return 1
"""


class DrrStore:
    def __init__(self, client: redis.Redis, scope: str = "default") -> None:
        self.client = client
        self.key = f"reelmill:fair:{scope}"
        self._save = client.register_script(_SAVE)

    def load(self) -> tuple[DrrState, int]:
        """The stored state and its version (0 and an empty state when there is none or it is unreadable)."""
        raw = {k.decode(): v.decode() for k, v in self.client.hgetall(self.key).items()}
        version = int(raw.get("v", 0))
        try:
            ring = [str(t) for t in json.loads(raw.get("ring", "[]"))]
            deficits = {str(t): int(d) for t, d in json.loads(raw.get("deficits", "{}")).items()}
        except (ValueError, TypeError, AttributeError):
            log.warning("fair share state at %s was unreadable; starting a new round", self.key)
            return DrrState(), version
        return DrrState(ring, deficits, raw.get("in_visit") == "1"), version

    def save(self, state: DrrState, version: int) -> bool:
        """Store ``state`` if nobody saved since ``version`` was loaded. Returns whether it was stored."""
        args = [version, json.dumps(state.ring), json.dumps(state.deficits), "1" if state.in_visit else "0"]
        return bool(self._save(keys=[self.key], args=args))
