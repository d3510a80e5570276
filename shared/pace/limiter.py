"""One pace per upstream credential, shared by every worker process on every host through Redis.

`Limiter(client, credential, config, rebuild=...)` answers, each in one atomic round trip:

- ``acquire(resource, holder, ttl_s) -> Grant``: a slot of ``streams`` or ``renders`` for a job, under the
  resource's effective cap; idempotent for a holder that already holds (its expiry is extended). A slot whose
  expiry passes frees itself, so a dead worker's slot comes back; live holders ``renew`` theirs.
- ``take(cls) -> float``: 0.0 when a call of class ``cls`` may go now (counted), else the seconds to wait
  (nothing counted). Two GCRA buckets at once: the credential's configured rate for all calls, and the
  class's current (AIMD) rate. It never sleeps: the engine parks the job.
- ``penalize(cls, retry_after_s)`` after a 429: the class pauses for every worker and its rate (and the cap
  of its resource) halves, once per pause; ``reward(cls)`` after a success raises them additively.

After a flush or a restart the state is gone (the ``epoch`` key with it): the first caller that notices takes a
lock, asks the engine's ``rebuild`` callback for the holders the database knows, restores them and the epoch
in one script, and only then grants; everyone else is refused ("rebuilding") meanwhile. Redis being
unreachable never raises: grants are refused ("unavailable") with a retry hint, logged once per outage.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

import redis

from shared.pace.config import CLASS_RESOURCE, RESOURCE_CLASS, PaceConfig, check_class, check_credential, check_resource
from shared.pace.grant import Grant, Reason
from shared.pace.keys import REGISTRY, Keys
from shared.pace.scripts import scripts_for
from shared.pace.snapshot import PaceSnapshot, parse_snapshot

log = logging.getLogger(__name__)

# credential -> {resource: {holder: expires_at}}: what the database says is running. An expiry is epoch seconds
# or an aware datetime (a lease's end); holders already expired are skipped.
Rebuild = Callable[[str], Mapping[str, Mapping[str, float | datetime]]]
_MISSING = object()


class Limiter:
    def __init__(
        self, client: redis.Redis, credential: str, config: PaceConfig, *, rebuild: Rebuild | None = None
    ) -> None:
        self.client = client
        self.credential = check_credential(credential)
        self.config = config
        self.keys = Keys(credential)
        self._rebuild_cb = rebuild
        self._scripts = scripts_for(client)
        self._down = False  # Redis failed last time: log the outage once, and its end
        # class -> whether the last granted call saw it below its limits; a success is reported (`reward`, one
        # round trip) only then: at full pace, each call costs one round trip, not two
        self._recovering: dict[str, bool] = {}

    # ---- held resources ---------------------------------------------------------------------------------
    def acquire(self, resource: str, holder: str, ttl_s: float, *, behind_line: bool = False) -> Grant:
        """A slot of ``resource`` for ``holder`` until ``ttl_s`` from now, or a refusal with a retry hint.
        ``behind_line``: a job asking for itself, refused ('full') while others wait in the scheduler's line (see
        ``mark_line``), so it cannot overtake them; the scheduler's own grants pass False."""
        check_resource(resource)
        _check_ttl(ttl_s)
        cfg, cls = self.config, RESOURCE_CLASS[resource]
        keys = [self.keys.epoch, self.keys.slots(resource), self.keys.aimd, self.keys.stats, self.keys.line(resource)]
        args = [holder, ttl_s, cfg.max_cap(resource), cls, cfg.busy_retry_s, "1" if behind_line else "0"]
        reply = self._granting(lambda: self._scripts.acquire(keys=keys, args=args))
        return reply if isinstance(reply, Grant) else _grant(reply)

    def mark_line(self, resource: str, waiting: bool, ttl_s: float) -> None:
        """Say whether jobs wait in the scheduler's line for ``resource`` (for ``ttl_s``: a scheduler that stops
        saying so lets newcomers take free slots directly again). Never raises."""
        check_resource(resource)
        key = self.keys.line(resource)
        self._call(lambda: self.client.set(key, "1", px=int(ttl_s * 1000)) if waiting else self.client.delete(key))

    def renew(self, resource: str, holders: Iterable[str], ttl_s: float) -> list[str]:
        """Extend the slots of ``holders`` to ``ttl_s`` from now, in one round trip. Returns the holders that no
        longer held a slot (it expired, or was never taken): they must stop, or acquire again."""
        check_resource(resource)
        _check_ttl(ttl_s)
        wanted = list(holders)
        if not wanted:
            return []
        keys = [self.keys.epoch, self.keys.slots(resource)]
        reply = self._granting(lambda: self._scripts.renew(keys=keys, args=[ttl_s, *wanted]))
        if isinstance(reply, Grant):  # Redis down or rebuilding: nothing is known to be lost
            return []
        return [_text(h) for h in reply[1:]]

    def release(self, resource: str, *holders: str) -> int:
        """Give the slots of ``holders`` back. Returns how many were held. Never raises."""
        check_resource(resource)
        if not holders:
            return 0
        keys = [self.keys.epoch, self.keys.slots(resource), self.keys.released]
        args = [resource, int(self.config.tombstone_s * 1000), *holders]
        reply = self._call(lambda: self._scripts.release(keys=keys, args=args))
        return 0 if reply is _MISSING else int(reply)

    def holders(self, resource: str) -> dict[str, float]:
        """The live holders of ``resource`` with their expiries (epoch seconds); empty if Redis is down."""
        check_resource(resource)
        reply = self._call(lambda: self._scripts.holders(keys=[self.keys.slots(resource)]))
        if reply is _MISSING:
            return {}
        pairs = reply[1:]
        return {_text(pairs[i]): float(pairs[i + 1]) for i in range(0, len(pairs), 2)}

    def in_flight(self, resource: str) -> int:
        return len(self.holders(resource))

    def room(self, resource: str) -> int:
        """How many more holders ``resource`` takes now: its effective cap less those in flight, 0 while its class
        is paused or Redis is down. What a dispatcher hands out as free slots. A missing state is rebuilt first
        (0 if that cannot be done here and now)."""
        snap = self.snapshot()
        if snap.available and not snap.ready and self._rebuild():
            snap = self.snapshot()
        if not snap.available or not snap.ready or snap.pause_remaining[RESOURCE_CLASS[check_resource(resource)]]:
            return 0
        return max(0, snap.caps[resource] - snap.in_flight[resource])

    # ---- calls ------------------------------------------------------------------------------------------
    def take(self, cls: str) -> float:
        """0.0 if a call of class ``cls`` may go now (and it is counted), else the seconds to wait."""
        return self.take_grant(cls).retry_after_s

    def take_grant(self, cls: str) -> Grant:
        """`take` with the reason of a refusal (``rate``, ``paused`` or ``unavailable``)."""
        check_class(cls)
        keys = [self.keys.aimd, self.keys.gcra, self.keys.stats]
        args = [cls, self.config.rps, self.config.floor_rps(), self._max_cap_arg(cls)]
        reply = self._call(lambda: self._scripts.take(keys=keys, args=args))
        if reply is _MISSING:
            return self._unavailable()
        if len(reply) > 3:  # a granted call says whether its class is still below its limits
            self._recovering[cls] = bool(int(reply[3]))
        return _grant(reply[:3])

    # ---- AIMD -------------------------------------------------------------------------------------------
    def penalize(self, cls: str, retry_after_s: float | None = None) -> float:
        """A 429 on a call of class ``cls``: pause the class for every worker for ``retry_after_s`` (or the
        configured default) and, unless it is already paused, halve its rate and its resource's cap.
        Returns the pause remaining (0.0 if Redis is down)."""
        check_class(cls)
        self._recovering[cls] = True
        cfg = self.config
        pause = cfg.default_pause_s if retry_after_s is None else retry_after_s
        pause = min(max(pause, 1.0), cfg.max_pause_s)  # a zero Retry-After would let a storm halve again and again
        keys = [self.keys.aimd, self.keys.stats]
        args = [cls, pause, cfg.rps, cfg.floor_rps(), self._max_cap_arg(cls)]
        reply = self._call(lambda: self._scripts.penalize(keys=keys, args=args))
        if reply is _MISSING:
            return 0.0
        cut, remaining, rate0, rate1, cap0, cap1 = reply
        if int(cut):
            log.warning(
                "upstream 429: pace %s class %s paused %.1fs, rate %.2f -> %.2f/s%s",
                self.credential, cls, float(remaining), float(rate0), float(rate1),
                f", {CLASS_RESOURCE[cls]} cap {cap0} -> {cap1}" if int(cap0) > 0 else "",
            )  # fmt: skip
        return float(remaining)

    def reward(self, cls: str) -> bool:
        """A call of class ``cls`` succeeded. After a window of successes the class's rate rises by
        ``rps_step`` and, after as many successes as its cap, its resource's cap by one; never above the
        configured limits, never during a pause. Returns whether anything rose."""
        check_class(cls)
        if not self._recovering.get(cls, True):  # at its limits, as this process's last call of the class saw
            return False
        cfg = self.config
        args = [cls, cfg.rps, cfg.floor_rps(), cfg.rps_step, cfg.recover_s, self._max_cap_arg(cls)]
        reply = self._call(lambda: self._scripts.reward(keys=[self.keys.aimd], args=args))
        if reply is _MISSING or not int(reply[0]):
            return False
        cap = int(reply[2])
        log.info(
            "pace %s class %s recovers: rate %.2f/s%s", self.credential, cls, float(reply[1]),
            f", {CLASS_RESOURCE[cls]} cap {cap}" if cap > 0 else "",
        )  # fmt: skip
        return True

    def pause_remaining(self, cls: str) -> float:
        """Seconds until class ``cls`` may call again after a 429 (0.0 when not paused or Redis is down)."""
        return self.snapshot().pause_remaining.get(check_class(cls), 0.0)

    # ---- metrics ----------------------------------------------------------------------------------------
    def snapshot(self) -> PaceSnapshot:
        keys = [self.keys.epoch, self.keys.aimd, self.keys.stats, *self.keys.all_slots]
        reply = self._call(lambda: self._scripts.snapshot(keys=keys))
        return parse_snapshot(self.credential, self.config, None if reply is _MISSING else reply)

    # ---- the state after a flush ------------------------------------------------------------------------
    def _granting(self, run: Callable[[], Any]) -> Any:
        """Run a script that needs the whole state; rebuild it once if it is missing."""
        for _ in range(2):
            reply = self._call(run)
            if reply is _MISSING:
                return self._unavailable()
            if int(reply[0]) != -1:
                return reply
            if not self._rebuild():
                break
        return Grant(False, self.config.busy_retry_s, Reason.REBUILDING)

    def _rebuild(self) -> bool:
        """Restore the holders from the engine's view under a lock. False if another process is at it, there is
        no callback, or it failed: the caller is refused and asks again later."""
        if self._rebuild_cb is None:
            log.warning("pace %s: state missing and no rebuild callback here; refusing", self.credential)
            return False
        token = uuid.uuid4().hex
        lock = self.keys.rebuild_lock
        try:
            if not self.client.set(lock, token, nx=True, px=int(self.config.rebuild_lock_s * 1000)):
                return False
            try:
                if self.client.exists(self.keys.epoch):
                    return True  # another process finished while we asked for the lock
                self._restore(self._rebuild_cb(self.credential))
                return True
            finally:
                self._scripts.unlock(keys=[lock], args=[token])
        except redis.RedisError as exc:
            self._note_down(exc)
            return False
        except Exception:
            log.exception("pace %s: rebuild callback failed; refusing until a rebuild succeeds", self.credential)
            return False

    def _restore(self, view: Mapping[str, Mapping[str, float | datetime]]) -> None:
        keys = [self.keys.epoch, self.keys.released, REGISTRY]
        args: list[Any] = [self.credential]
        counts = []
        for resource in RESOURCE_CLASS:
            held = dict(view.get(resource, {}))
            keys.append(self.keys.slots(resource))
            args += [resource, len(held)]
            for holder, expires_at in held.items():
                args += [holder, _epoch_s(expires_at)]
            counts.append(f"{resource}={len(held)}")
        unknown = set(view) - set(RESOURCE_CLASS)
        if unknown:
            raise ValueError(f"rebuild returned unknown resources: {sorted(unknown)}")
        self._scripts.restore(keys=keys, args=args)
        log.warning("pace %s: state was missing; rebuilt from the database (%s)", self.credential, ", ".join(counts))

    # ---- Redis failures ---------------------------------------------------------------------------------
    def _call(self, run: Callable[[], Any]) -> Any:
        try:
            reply = run()
        except redis.RedisError as exc:
            self._note_down(exc)
            return _MISSING
        if self._down:
            self._down = False
            log.warning("pace %s: Redis reachable again", self.credential)
        return reply

    def _note_down(self, exc: Exception) -> None:
        if not self._down:
            self._down = True
            log.warning("pace %s: Redis unreachable (%s); refusing upstream capacity until it is back",
                        self.credential, type(exc).__name__)  # fmt: skip

    def _unavailable(self) -> Grant:
        return Grant(False, self.config.unavailable_retry_s, Reason.UNAVAILABLE)

    def _max_cap_arg(self, cls: str) -> int | str:
        resource = CLASS_RESOURCE.get(cls)
        return self.config.max_cap(resource) if resource else ""


def known_credentials(client: redis.Redis) -> list[str]:
    """The credentials whose pace state exists (built at least once since the last flush), for /metrics."""
    return sorted(_text(c) for c in client.smembers(REGISTRY))


def _grant(reply: list[Any]) -> Grant:
    code, wait, reason = reply
    if int(code) == 1:
        return Grant(True, 0.0, Reason(_text(reason)))
    return Grant(False, max(0.001, float(wait)), Reason(_text(reason)))  # a refusal never reads as "go now"


def _epoch_s(expires_at: float | datetime) -> float:
    return expires_at.timestamp() if isinstance(expires_at, datetime) else float(expires_at)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _check_ttl(ttl_s: float) -> None:
    if not ttl_s > 0:
        raise ValueError(f"ttl_s must be positive, got {ttl_s!r}")
