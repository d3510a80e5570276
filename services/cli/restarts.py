"""`reelmill up` keeps its children running, as compose's `restart:` policy or Kubernetes would.

A child that dies on its own (a worker killed by the OOM killer, a Celery worker that exits on a broker connection
lost mid-restore, Redis killed) is named with its last lines and started again after a short backoff, while the
others go on; jobs it held come back through their leases (the sweeper), exactly as after a pod restart. A role
that dies `limit` times within `window_s` is crash-looping: `up` stops everything and exits 1, since starting it a
sixth time would only hide the problem.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from services.cli.supervisor import Supervisor, describe_exit


@dataclass(frozen=True)
class RestartPolicy:
    limit: int = 5  # deaths of one role within the window before `up` gives up
    window_s: float = 120.0
    first_delay_s: float = 1.0  # doubled for each recent death, up to max_delay_s
    max_delay_s: float = 30.0


class Restarts:
    """Each role's recent deaths: how long to wait before starting it again, or None when it is crash-looping."""

    def __init__(self, policy: RestartPolicy, clock: Callable[[], float] = time.monotonic) -> None:
        self.policy, self.clock = policy, clock
        self._deaths: dict[str, deque[float]] = {}

    def died(self, role: str) -> float | None:
        now = self.clock()
        deaths = self._deaths.setdefault(role, deque())
        deaths.append(now)
        while deaths and now - deaths[0] > self.policy.window_s:
            deaths.popleft()
        if len(deaths) >= self.policy.limit:
            return None
        return min(self.policy.first_delay_s * 2 ** (len(deaths) - 1), self.policy.max_delay_s)

    def recent(self, role: str) -> int:
        return len(self._deaths.get(role, ()))


def explain_death(sup: Supervisor, role: str, when: str) -> str:
    """Show the dead child's last lines (they are in its log file too); the sentence that says what happened."""
    child = sup.children[role]
    code = describe_exit(child.reap())
    for line in list(child.tail)[-10:]:
        sup.say(role, line)
    return f"{role} exited {when} ({code}); its log: {sup.log_dir / (role + '.log')}"


def keep_running(
    sup: Supervisor,
    stop: threading.Event,
    restarts: Restarts,
    started_again: Callable[[str, int], None] = lambda role, old_pid: None,
    every: float = 0.2,
) -> int:
    """Watch the children until ``stop`` is set (0), restarting any that dies; 1 when one is crash-looping."""
    due: dict[str, float] = {}  # role -> when it starts again
    while not stop.wait(every):
        dead = sup.first_dead()
        if dead is not None:
            role = dead.role
            why = explain_death(sup, role, "unexpectedly")
            delay = restarts.died(role)
            if delay is None:
                times, window = restarts.recent(role), restarts.policy.window_s
                sup.say("reelmill", f"{why}; it died {times} times in {window:.0f} s: stopping everything")
                return 1
            sup.say("reelmill", f"{why}; starting it again in {delay:.0f} s")
            due[role] = time.monotonic() + delay
        for role, when in list(due.items()):
            if time.monotonic() >= when:
                del due[role]
                old = sup.children[role]
                sup.start(old.spec)
                sup.say("reelmill", f"{role} started again")
                started_again(role, old.proc.pid)
    return 0
