"""Helpers for the proving ground (tests/proving/): the upstream calls a job made, counted from the simulator,
the credential kept known to the simulator across resets, and the worker's own record of a recovered send.

A job's calls are counted as the change in the simulator's per-endpoint counters while it ran (one job at a
time): every call it made, the refused and faulted ones included, whichever session they named.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tests.utils import stack
from tests.utils.sim_admin import SimAdmin
from tests.utils.waiting import holds_within

# The endpoints a job calls. `credits` is left out: the API reads the balance when it admits a job (cached a
# few seconds), which is admission, not the job's flow.
JOB_ENDPOINTS = (
    "anonymous_token",
    "session",
    "upload",
    "run_sse",
    "state",
    "render_submit",
    "render_status",
    "render_cancel",
)
# (The video's download by the artifact worker, `render_output`/`render_download`, comes after the job ends, on
# its own queue: tests/artifacts counts it. The flow's calls are counted here.)

# The notes the runner logs ("-> message (<note>)") after each look at the draft by a send of unknown fate
# (services/worker/steps/message.py, recover): each is exactly one state read.
RECOVER_NOTES = (
    "message landed",
    "the edit is landing; waiting for the draft to hold still",
    "waiting for an edit that may still be running upstream",
    "the message never ran: sending it again",
)


def endpoint_calls(sim: SimAdmin) -> Counter[str]:
    counts = sim.counters()["endpoints"]
    return Counter({name: int(counts.get(name, 0)) for name in JOB_ENDPOINTS})


def calls_since(sim: SimAdmin, before: Counter[str]) -> dict[str, int]:
    """Calls per endpoint since ``before`` (zeros left out, so expectations list only what a job calls)."""
    now = endpoint_calls(sim)
    return {name: now[name] - before[name] for name in JOB_ENDPOINTS if now[name] - before[name]}


def keep_credential_known(sim: SimAdmin, credits: int = 1_000_000) -> None:
    """After a simulator reset, make the credential reelmill holds (the one row every process reads) known to
    the simulator again, so no job pays a rejected call and a mint for the reset itself. Mints it the first time."""
    from shared.db import session_scope
    from shared.nemo.credentials import CREDENTIAL
    from shared.nemo.upstream import get_client
    from shared.tables import UpstreamCredential

    with session_scope() as session:
        row = session.get(UpstreamCredential, CREDENTIAL)
        token, user_id = (row.token, row.user_id) if row is not None else (None, None)
    if token:
        sim.add_token(token, credits=credits, user_id=user_id)
    else:
        get_client().tokens.token()  # the first mint, before any job counts its calls
    sim.set_credits(credits)


def wait_quiet(timeout: float = 60) -> None:
    """Wait until no job is on its way (one left running by an earlier test would call into this test's counts).

    A job still running after ``timeout`` is a leak of an earlier test, not this test's business: its id, status and
    stage are printed (pytest shows them with the next failure) and it is canceled, the way a client would."""
    from sqlalchemy import func, update
    from sqlmodel import select

    from shared.db import session_scope
    from shared.domain.jobs import cancel_job
    from shared.tables import Job
    from shared.timeutil import utcnow

    in_flight = Job.status.in_(["queued", "starting", "processing"])  # type: ignore[attr-defined]

    def quiet() -> bool:
        with session_scope() as session:
            busy = session.exec(select(func.count()).where(in_flight)).one()
        return busy == 0

    if holds_within(quiet, timeout, every=0.2):
        return
    with session_scope() as session:
        left = session.exec(select(Job).where(in_flight)).all()
        for job in left:
            print(f"wait_quiet: job {job.id} of {job.tenant_id} left {job.status}/{job.stage} by an earlier test")
            cancel_job(session, job.tenant_id, job.id)
    if holds_within(quiet, 30, every=0.2):
        return
    # Still not ended: a hand-made job no worker can finish. End it in the database, as nothing else will.
    with session_scope() as session:
        session.execute(
            update(Job)
            .where(in_flight)
            .values(status="canceled", stage="done", lease_owner=None, completed_at=utcnow())
        )


def submit(api: Any, tenant: stack.Tenant, **body: Any) -> dict[str, Any]:
    body = {"prompt": "a fox running through a snowy forest at dusk", **body}
    resp = api.post("/v1/jobs", json=body, headers=tenant.headers)
    assert resp.status_code == 201, resp.text
    return resp.json()


def follow_up(api: Any, tenant: stack.Tenant, job_id: str, text: str) -> dict[str, Any]:
    resp = api.post(f"/v1/jobs/{job_id}/messages", json={"text": text}, headers=tenant.headers)
    assert resp.status_code == 202, resp.text
    return resp.json()


def revision_ended(api: Any, tenant: stack.Tenant, job_id: str, revisions: int, timeout: float = 60) -> dict[str, Any]:
    """The job once its ``revisions``-th revision ended (and the job with it)."""
    return stack.wait_job(
        api,
        tenant,
        job_id,
        timeout=timeout,
        until=lambda j: (
            len(j["revisions"]) == revisions
            and j["revisions"][-1]["status"] in ("succeeded", "failed", "canceled")
            and j["status"] in ("succeeded", "failed", "canceled")
        ),
    )


def job_row(job_id: str) -> Any:
    from shared.db import session_scope
    from shared.tables import Job

    with session_scope() as session:
        job = session.get(Job, job_id)
        assert job is not None
        session.expunge(job)
        return job


def log_lines(path: Path, job_id: str) -> list[dict[str, Any]]:
    """The JSON log lines of one job in a process's log."""
    out = []
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return out
    for line in text.splitlines():
        if job_id not in line:
            continue
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if doc.get("job_id") == job_id:
            out.append(doc)
    return out


def recover_looks(paths: Iterable[Path], job_id: str) -> int:
    """How many times the workers looked at the draft to learn the fate of the job's sends (one state read each)."""
    notes = [doc.get("msg", "") for path in paths for doc in log_lines(path, job_id)]
    return sum(1 for msg in notes if msg.startswith("-> ") and any(note in msg for note in RECOVER_NOTES))


class WorkerSwap:
    """Stop the session's all-queue worker and run the given workers instead; put a fresh all-queue worker back at
    the end (``services`` is the session fixture's dict, so later tests get the new one)."""

    def __init__(self, services: dict[str, stack.Proc]) -> None:
        self.services = services
        self.started: list[stack.Proc] = []

    def __enter__(self) -> WorkerSwap:
        self.services["worker"].stop()
        return self

    def start(self, name: str, queues: str, **env: str) -> stack.Proc:
        proc = stack.start_worker(name, queues=queues, concurrency=20, **env)
        self.started.append(proc)
        return proc

    def __exit__(self, *exc: object) -> None:
        for proc in self.started:
            proc.stop()
        self.services["worker"] = stack.start_worker("worker")


def turn_row(job_id: str, seq: int = 0) -> Any:
    from sqlmodel import select

    from shared.db import session_scope
    from shared.tables import JobTurn

    with session_scope() as session:
        turn = session.exec(select(JobTurn).where(JobTurn.job_id == job_id, JobTurn.seq == seq)).one()
        session.expunge(turn)
        return turn


def call_trail(sim: SimAdmin, count: int) -> list[str]:
    """The last ``count`` upstream calls, oldest first, one short line each (for a failing test's message)."""
    lines = []
    for entry in sim.requests(max(count, 1))[-count:] if count > 0 else []:
        if entry["endpoint"] not in JOB_ENDPOINTS:
            continue
        extra = " ".join(f"{k}={entry[k]}" for k in ("fault", "reset", "dropped", "capacity") if entry.get(k))
        sid = (entry.get("session_id") or "")[-6:]
        lines.append(f"{entry['endpoint']} [{sid}] -> {entry['status']} {extra}".rstrip())
    return lines
