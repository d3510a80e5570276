"""Deficit round robin over tenants: which tenants the next free upstream slots go to. Pure, no I/O.

`pick(demands, free, state)` hands out ``free`` grants, one tenant id per grant, and returns the new state.
Tenants sit in a ring; a tenant's visit credits it its weight (one job costs one), and it is served while its
credit, its backlog and its room (its own cap minus what it has in flight) last. Standard DRR: a tenant whose
backlog runs out leaves the ring and loses its credit; a tenant with backlog but no room is passed over
without credit (and keeps at most one quantum). With every tenant backlogged each gets ``weight / Σ weights``
of the grants, and no tenant with backlog and room waits more than one round. A visit cut short because the
free slots ran out goes on at the next call, so a dispatcher that frees one slot at a time sees one long DRR.

Within a tenant the engine orders jobs by priority, then age; this module only chooses tenants. The state is
soft: losing it (a Redis flush) costs a little fairness for one round, never a job.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Demand:
    """One tenant's position: jobs waiting, how many more it may start, its weight (an integer >= 1)."""

    tenant: str
    backlog: int
    room: int
    weight: int = 1

    def __post_init__(self) -> None:
        check_weight(self.weight, self.tenant)
        if self.backlog < 0 or self.room < 0:
            raise ValueError(f"tenant {self.tenant!r}: backlog and room must be >= 0")


@dataclass
class DrrState:
    """The ring of backlogged tenants (the next to visit first), their credits, and whether the first one's
    visit is in progress (its quantum already credited)."""

    ring: list[str] = field(default_factory=list)
    deficits: dict[str, int] = field(default_factory=dict)
    in_visit: bool = False


def check_weight(weight: object, tenant: str = "") -> int:
    """A tenant's weight: an integer >= 1. Zero would starve the tenant forever, so it is refused."""
    if isinstance(weight, bool) or not isinstance(weight, int) or weight < 1:
        who = f"tenant {tenant!r}: " if tenant else ""
        raise ValueError(f"{who}weight must be an integer >= 1, got {weight!r}")
    return weight


def pick(demands: Sequence[Demand], free: int, state: DrrState | None = None) -> tuple[list[str], DrrState]:
    """The tenants to serve, one entry per grant (at most ``free``), and the state for the next call."""
    if free < 0:
        raise ValueError("free must be >= 0")
    by_tenant = _index(demands)
    run = _Run(by_tenant, _carry(state or DrrState(), by_tenant))
    while len(run.grants) < free and run.any_eligible():
        run.visit(free)
    return run.grants, run.state


def _index(demands: Sequence[Demand]) -> dict[str, Demand]:
    by_tenant: dict[str, Demand] = {}
    for demand in demands:
        if demand.tenant in by_tenant:
            raise ValueError(f"tenant {demand.tenant!r} appears twice")
        by_tenant[demand.tenant] = demand
    return by_tenant


def _carry(state: DrrState, by_tenant: dict[str, Demand]) -> DrrState:
    """The old ring less tenants without backlog (their credit is lost), new backlogged tenants at the tail.
    Accepts any stored state (it may come from Redis): unknown or idle tenants drop out, credits are bounded."""
    ring = [t for t in state.ring if t in by_tenant and by_tenant[t].backlog > 0]
    known = set(ring)
    ring += [t for t, d in by_tenant.items() if d.backlog > 0 and t not in known]
    # a credit never exceeds two quanta (one left over plus one being spent); a lowered weight lowers the bound
    deficits = {t: min(max(state.deficits.get(t, 0), 0), 2 * by_tenant[t].weight) for t in ring}
    in_visit = state.in_visit and bool(ring) and bool(state.ring) and ring[0] == state.ring[0]
    return DrrState(ring, deficits, in_visit)


class _Run:
    """One call of `pick`: the remaining backlog and room, and the grants so far."""

    def __init__(self, by_tenant: dict[str, Demand], state: DrrState) -> None:
        self.weight = {t: d.weight for t, d in by_tenant.items()}
        self.backlog = {t: d.backlog for t, d in by_tenant.items()}
        self.room = {t: d.room for t, d in by_tenant.items()}
        self.state = state
        self.grants: list[str] = []

    def eligible(self, tenant: str) -> bool:
        return self.backlog[tenant] > 0 and self.room[tenant] > 0

    def any_eligible(self) -> bool:
        return any(self.eligible(t) for t in self.state.ring)

    def visit(self, free: int) -> None:
        """Serve the tenant at the head of the ring, then move on (unless the free slots ran out mid-visit)."""
        st = self.state
        tenant = st.ring[0]
        if not st.in_visit:
            if not self.eligible(tenant):
                self._next()
                return
            st.deficits[tenant] += self.weight[tenant]
            st.in_visit = True
        while st.deficits[tenant] >= 1 and self.eligible(tenant) and len(self.grants) < free:
            self.grants.append(tenant)
            st.deficits[tenant] -= 1
            self.backlog[tenant] -= 1
            self.room[tenant] -= 1
        if st.deficits[tenant] >= 1 and self.eligible(tenant):
            return  # out of free slots: the visit goes on at the next call
        self._end_visit(tenant)

    def _end_visit(self, tenant: str) -> None:
        st = self.state
        st.in_visit = False
        if self.backlog[tenant] == 0:  # its queue ran empty: it leaves the ring and loses its credit
            st.ring.pop(0)
            del st.deficits[tenant]
            return
        st.deficits[tenant] = min(st.deficits[tenant], self.weight[tenant])
        self._next()

    def _next(self) -> None:
        st = self.state
        st.ring.append(st.ring.pop(0))
