"""Benchmark: N jobs submitted at once, run by one worker host against the simulator.

    uv run python bench/pipeline_makespan.py --jobs 1000

Starts its own Redis, a scratch PostgreSQL database, the simulator (message 2 s, render 5 s), a steps worker, a
streams worker and beat; inserts N jobs in one transaction and dispatches them; waits for every job to end.
Prints and records (bench/results/pipeline_makespan.json): makespan, the ideal makespan (one job's upstream time),
their ratio, orchestration overhead per job (p50/p99), peak in-flight jobs and streams, peak worker memory,
upstream calls per job by endpoint; and the same jobs run by a naive baseline (the seeds' one-job-at-a-time flow,
over a sample, extrapolated).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.utils import stack  # noqa: E402  (the same process helpers the tests use)

RESULTS = ROOT / "bench" / "results" / "pipeline_makespan.json"


def configure_env(args: argparse.Namespace) -> None:
    stack.prepare_env()
    os.environ.update(
        {
            "REELMILL_RENDER_POLL_S": str(args.poll_s),
            "REELMILL_LEASE_S": "30",
            "REELMILL_QUEUE_GRACE_S": "120",
            "REELMILL_SWEEP_INTERVAL_S": "10",
            "REELMILL_LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
            "REELMILL_DB_POOL_SIZE": str(args.db_pool),
            "REELMILL_SIM_TIME_SCALE": "1.0",
            "REELMILL_SIM_MESSAGE_SECONDS": str(args.message_s),
            "REELMILL_SIM_RENDER_SECONDS": str(args.render_s),
            "REELMILL_SIM_HEARTBEAT_EVERY_S": "5.0",
            "REELMILL_SIM_ANONYMOUS_CREDITS": "100000000",
            "REELMILL_SIM_CREDITS_PER_MESSAGE": "1",
            "REELMILL_TASK_EVENTS": "true" if args.task_events else "false",
        }
    )


def vm_hwm_mb(pid: int) -> float:
    """Peak resident memory of a process and its children (MB), from /proc."""
    total = 0.0
    for p in [pid, *children(pid)]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1]) / 1024
        except OSError:
            pass
    return total


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (seconds)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def insert_jobs(n: int, tenant_name: str) -> tuple[float, Any]:
    """Write N jobs in one transaction; the commit submits them all at once (the dispatch follows the commit).
    Returns the seconds spent writing rows and the moment of submission (the clock starts there)."""
    from shared.db import session_scope
    from shared.domain.job_input import JobSpec
    from shared.domain.jobs import create_job
    from shared.domain.tenants import get_or_create_tenant
    from shared.taskq.celery import install_celery_dispatcher
    from shared.timeutil import utcnow

    install_celery_dispatcher()

    spec = JobSpec(prompt="a 5-second cinematic clip of a fox running through a snowy forest at dusk")
    started = time.monotonic()
    with session_scope() as session:
        tenant = get_or_create_tenant(session, tenant_name)
        for _ in range(n):
            create_job(session, tenant.id, spec)
        written = time.monotonic() - started
        submitted_at = utcnow()
    return written, submitted_at


def watch(n: int, procs: list[stack.Proc], sim: Any, timeout: float) -> dict[str, Any]:
    from sqlalchemy import func
    from sqlmodel import select

    from shared.db import session_scope
    from shared.tables import Job

    peak_active = peak_streams = 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with session_scope() as session:
            rows = dict(session.exec(select(Job.status, func.count()).group_by(Job.status)).all())
        active = rows.get("starting", 0) + rows.get("processing", 0)
        peak_active = max(peak_active, active)
        peak_streams = max(peak_streams, int(sim.counters().get("in_flight_streams", 0)))
        done = sum(rows.get(s, 0) for s in ("succeeded", "failed", "canceled"))
        if done >= n:
            return {"statuses": rows, "peak_active": peak_active, "peak_streams": peak_streams}
        for proc in procs:
            if proc.popen.poll() is not None:
                raise SystemExit(f"{proc.name} died:\n{proc.tail()}")
        time.sleep(0.25)
    raise SystemExit(f"timed out; statuses {rows}")


def job_timings(submitted_at: Any) -> tuple[float, list[float]]:
    from sqlmodel import select

    from shared.db import session_scope
    from shared.tables import Job
    from shared.timeutil import as_utc

    with session_scope() as session:
        jobs = session.exec(select(Job.created_at, Job.completed_at)).all()
    completed = [as_utc(d) for _, d in jobs]
    makespan = (max(completed) - submitted_at).total_seconds()  # type: ignore[type-var, operator]
    per_job = [(d - submitted_at).total_seconds() for d in completed]  # type: ignore[operator]
    return makespan, per_job


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def run_pipeline(args: argparse.Namespace, sim: Any) -> dict[str, Any]:
    procs = [
        *(
            stack.start_worker(f"bench-steps{i}", "steps,webhooks", args.steps_concurrency)
            for i in range(args.steps_workers)
        ),
        stack.start_worker("bench-streams", "streams", args.streams_concurrency),
        stack.start_process("bench-beat", ["beat", "--loglevel", "WARNING"]),
    ]
    try:
        cpu_before = {p.name: cpu_seconds(p.popen.pid) for p in procs}
        insert_s, submitted_at = insert_jobs(args.jobs, "bench")
        seen = watch(args.jobs, procs, sim, timeout=args.timeout)
        makespan, per_job = job_timings(submitted_at)
        memory = {p.name: round(vm_hwm_mb(p.popen.pid), 1) for p in procs[:-1]}
        cpu_ms = {p.name: round(1000 * (cpu_seconds(p.popen.pid) - cpu_before[p.name]) / args.jobs, 1) for p in procs}
    finally:
        for proc in procs:
            proc.stop()
    upstream = args.message_s + math.ceil(args.render_s / args.poll_s) * args.poll_s
    overhead = [t - upstream for t in per_job]
    counters = sim.counters()["endpoints"]
    return {
        "jobs": args.jobs,
        "rows_written_s": round(insert_s, 2),
        "statuses": seen["statuses"],
        "makespan_s": round(makespan, 2),
        "ideal_makespan_s": upstream,
        "ratio": round(makespan / upstream, 2),
        "overhead_p50_s": round(pct(overhead, 0.5), 2),
        "overhead_p99_s": round(pct(overhead, 0.99), 2),
        "peak_jobs_in_flight": seen["peak_active"],
        "peak_streams_in_flight": seen["peak_streams"],
        "peak_worker_rss_mb": memory,
        "worker_cpu_ms_per_job": cpu_ms,
        "upstream_calls_per_job": {k: round(v / args.jobs, 2) for k, v in sorted(counters.items())},
    }


def run_baseline(args: argparse.Namespace, sim_url: str) -> dict[str, Any]:
    """The seeds' flow, one job at a time: token, session, message, state, render, poll every N s."""
    from shared.nemo.client import NemoClient
    from shared.nemo.tokens import AnonymousTokenProvider

    client = NemoClient(sim_url)
    client.tokens = AnonymousTokenProvider(client.mint_anonymous_token, "bench-baseline")
    started = time.monotonic()
    for i in range(args.baseline_jobs):
        session = client.create_session()
        client.send_message(session.session_id, "a 5-second cinematic clip of a fox")
        draft = client.get_state(session.session_id).draft or {}
        render_id = f"render_baseline_{i}_{int(time.time() * 1000)}"
        status = client.submit_render(render_id, session.session_id, draft)
        while not status.done:
            time.sleep(args.poll_s)
            status = client.get_render(render_id)
    per_job = (time.monotonic() - started) / args.baseline_jobs
    return {
        "sample_jobs": args.baseline_jobs,
        "seconds_per_job": round(per_job, 2),
        "extrapolated_makespan_s": round(per_job * args.jobs, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--message-s", type=float, default=2.0)
    parser.add_argument("--render-s", type=float, default=5.0)
    parser.add_argument("--poll-s", type=float, default=1.0)
    parser.add_argument("--steps-workers", type=int, default=1, help="steps worker processes")
    parser.add_argument("--steps-concurrency", type=int, default=200, help="threads per steps worker")
    parser.add_argument("--streams-concurrency", type=int, default=1000)
    parser.add_argument("--task-events", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--db-pool", type=int, default=20)
    parser.add_argument("--baseline-jobs", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args()

    configure_env(args)
    from tests.utils.sim_admin import SimAdmin

    redis_proc = stack.start_redis(stack.REDIS_PORT)
    stack.create_database()
    sim_proc = stack.start_process("bench-sim", ["sim", "--host", "127.0.0.1", "--port", str(stack.SIM_PORT)])
    try:
        stack.migrate()
        sim_url = f"http://127.0.0.1:{stack.SIM_PORT}"
        from tests.utils.net import wait_http

        wait_http(f"{sim_url}/_sim/health", proc=sim_proc.popen)
        sim = SimAdmin(sim_url)
        result = {"pipeline": run_pipeline(args, sim)}
        sim.reset()
        result["baseline"] = run_baseline(args, sim_url)
        result["speedup_vs_baseline"] = round(
            result["baseline"]["extrapolated_makespan_s"] / result["pipeline"]["makespan_s"], 1
        )
        result["settings"] = vars(args)
        result["sim_peak_rss_mb"] = round(vm_hwm_mb(sim_proc.popen.pid), 1)
    finally:
        sim_proc.stop()
        from shared.db import reset_engine

        reset_engine()
        stack.drop_database()
        redis_proc.terminate()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    overhead = result["pipeline"]
    print(
        f"\n{overhead['jobs']} jobs: makespan {overhead['makespan_s']} s vs ideal {overhead['ideal_makespan_s']} s "
        f"(x{overhead['ratio']}); overhead p50 {overhead['overhead_p50_s']} s, p99 {overhead['overhead_p99_s']} s; "
        f"baseline {result['baseline']['extrapolated_makespan_s']} s"
    )


if __name__ == "__main__":
    main()
