"""Chaos benchmark: N jobs through reelmill's production roles while the upstream misbehaves and reelmill's own
processes die.

    uv run python bench/chaos.py                 # 500 jobs
    uv run python bench/chaos.py --jobs 30 --fault-every 2 --out /tmp/chaos.json

Starts, in a temporary directory (bench/chaos_stack.py): a PostgreSQL server of its own (`initdb`, a free port),
a Redis of its own, the simulator at time scale 0.01 with the chaos preset armed (every retryable class of fault,
429 / 5xx / resets before the first byte with and without the request acted on / streams cut mid-way / expired
tokens / lost sessions, each on `--rate` of the calls it applies to), then `reelmill migrate`, `reelmill api`, a
steps+webhooks worker, a streams worker and `reelmill beat`. A configured upstream token (`REELMILL_NEMO_TOKEN`,
registered in the simulator with credits to spare) carries the run: 500 jobs are more than an anonymous token's
100 credits, and a shared credential is what production runs on.

It submits the jobs through the API (an Idempotency-Key each, retried until accepted), posts a follow-up on a
share of them once they succeed, and meanwhile, every `--fault-every` seconds, in turn: SIGKILLs the streams
worker, FLUSHALLs Redis, SIGKILLs the steps worker, SIGKILLs the API, restarts Redis empty, SIGKILLs the streams
worker, restarts PostgreSQL (its server stopped and started), SIGKILLs beat, SIGKILLs the steps worker (each killed
process started again at once, as a supervisor would). The faults stop once `--chaos-until` of the jobs have
ended (after one whole round at least); then the run drains.

It prints and writes (bench/results/chaos.json): succeeded, failed by reason, stuck, lost, duplicate messages,
duplicate renders, extra sessions, time to drain after the last fault; and exits 1 when the target is missed:
0 lost, 0 stuck, 0 duplicates, every failure an upstream refusal that retrying cannot fix.
"""

from __future__ import annotations

import argparse
import json
import secrets
import signal
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.chaos_stack import ChaosStack, exit_on_sigterm  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "chaos.json"
TERMINAL = ("succeeded", "failed", "canceled")
KAPWING, KLING = "ai-video-generator-free-kapwing", "free-kling-ai-video-generation"
# Failures no retry can fix, whatever the chaos: a revision whose session the upstream says is gone (its
# timeline went with it; the job offers the request that rebuilds it).
UNFIXABLE = {"session_expired"}
ROUND = (
    "kill_streams",
    "flushall",
    "kill_steps",
    "kill_api",
    "restart_redis",
    "kill_streams",
    "restart_postgres",
    "kill_beat",
    "kill_steps",
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--jobs", type=int, default=500)
    p.add_argument("--rate", type=float, default=0.1, help="share of calls that meet each class of fault")
    p.add_argument("--fault-every", type=float, default=3.0, help="seconds between process faults")
    p.add_argument("--chaos-until", type=float, default=0.9, help="faults stop once this share of jobs ended")
    p.add_argument("--chaos-max-s", type=float, default=600.0, help="faults stop after this long in any case")
    p.add_argument("--drain-timeout", type=float, default=900.0, help="after the last fault; then jobs are stuck")
    p.add_argument("--follow-ups", type=float, default=0.1, help="share of jobs that get a follow-up message")
    p.add_argument("--time-scale", type=float, default=0.01, help="the simulator's time scale")
    p.add_argument("--message-s", type=float, default=60.0, help="an agent run, upstream seconds (x time scale)")
    p.add_argument("--render-s", type=float, default=90.0, help="a render, upstream seconds (x time scale)")
    p.add_argument("--submitters", type=int, default=8)
    p.add_argument("--spread-s", type=float, default=0.0, help="spread the submissions over this long")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, database)")
    return p.parse_args(argv)


def reelmill_settings(scale: float) -> dict[str, str]:
    """Timings scaled to the simulator's clock, so that a run drains in minutes (each says why)."""
    return {
        "REELMILL_LEASE_S": "3",  # a killed worker's job is free again within seconds
        "REELMILL_QUEUE_GRACE_S": "4",  # a step lost from Redis is sent again 4 s after it was due
        "REELMILL_SWEEP_INTERVAL_S": "1",
        "REELMILL_SSE_MAX_S": f"{900 * scale:g}",  # the upstream's 15-minute stream cap, scaled
        "REELMILL_SSE_IDLE_S": "5",  # heartbeats come every 0.05 s; 5 s of silence on a loaded host is a dead stream
        "REELMILL_RENDER_POLL_S": f"{30 * scale:g}",
        "REELMILL_RENDER_MAX_S": f"{1800 * scale:g}",
        "REELMILL_EDIT_SETTLE_S": "0.3",
        "REELMILL_RETRY_BASE_S": "0.2",
        "REELMILL_RETRY_MAX_S": f"{300 * scale:g}",
        # Not timing: the preset faults ~40% of a render submit's attempts (a lookup and a submit, each meeting
        # six classes at 10%), so 8 attempts run out for ~1 job in 1,000 (seen: 1 of 500); 12 for ~1 in 100,000.
        "REELMILL_MAX_STEP_ATTEMPTS": "12",
        "REELMILL_RATE_LIMIT_WAIT_S": f"{30 * scale:g}",
        # The pace toward the upstream at the simulator's clock too: its default 5 calls/s (and AIMD's floor and
        # step) are per upstream second, and render polls come 1/scale times as often as they would upstream.
        "REELMILL_UPSTREAM_RPS": f"{5 / scale:g}",
        "REELMILL_UPSTREAM_MIN_RPS": f"{0.2 / scale:g}",
        "REELMILL_UPSTREAM_RPS_STEP": f"{0.5 / scale:g}",
        "REELMILL_UPSTREAM_RECOVER_S": f"{max(5 * scale, 0.5):g}",
        "REELMILL_STILL_WORKING_EVERY_S": f"{120 * scale:g}",
        "REELMILL_POLL_TICK_S": "0.25",
        "REELMILL_TASK_EVENTS": "false",
        "REELMILL_LOG_JSON": "true",
        "REELMILL_LOG_LEVEL": "INFO",
        "REELMILL_OUTBOUND_ALLOW_PRIVATE": "true",
        "REELMILL_OUTBOUND_ALLOW_HTTP": "true",
        "REELMILL_DB_POOL_SIZE": "20",
    }


def sim_settings(args: argparse.Namespace) -> dict[str, str]:
    return {
        "REELMILL_SIM_TIME_SCALE": str(args.time_scale),
        "REELMILL_SIM_MESSAGE_SECONDS": str(args.message_s),
        "REELMILL_SIM_RENDER_SECONDS": str(args.render_s),
        "REELMILL_SIM_SEED": str(args.seed),
        "REELMILL_SIM_LOG_LEVEL": "error",
    }


# ---- the workload ---------------------------------------------------------------------------------------------


def job_body(i: int) -> dict[str, Any]:
    body: dict[str, Any] = {"prompt": f"job {i}: a city at night, neon, rain", "profile": KAPWING if i % 2 else KLING}
    if i % 3 == 0:
        body["assets"] = [f"https://cdn.example.com/clip{i}.mp4"]
    return body


class Workload:
    """Submits the jobs (retried with their Idempotency-Key until the API takes them) and the follow-ups."""

    def __init__(self, api_url: str, key: str, args: argparse.Namespace) -> None:
        self.api_url, self.args = api_url, args
        self.headers = {"Authorization": f"Bearer {key}"}
        self.run = secrets.token_hex(4)
        self.ids: dict[int, str] = {}
        self.not_accepted: list[int] = []
        self.submit_retries = 0
        every = max(1, round(1 / args.follow_ups)) if args.follow_ups > 0 else 0
        self.wants_follow_up = {i for i in range(args.jobs) if every and i % every == every // 2}
        self.followed: dict[str, int] = {}  # job id -> revisions it had when its follow-up was posted
        self.first_try: dict[str, int] = {}  # job id -> revisions it had when its follow-up was first tried
        self.lock = threading.Lock()
        self.started = time.monotonic()

    def submit_all(self) -> None:
        self.started = time.monotonic()
        with ThreadPoolExecutor(self.args.submitters) as pool:
            list(pool.map(self._submit, range(self.args.jobs)))

    def _submit(self, i: int) -> None:
        if self.args.spread_s:
            time.sleep(max(0.0, self.started + self.args.spread_s * i / self.args.jobs - time.monotonic()))
        headers = {**self.headers, "Idempotency-Key": f"chaos-{self.run}-{i}"}
        deadline = time.monotonic() + 600
        with httpx.Client(base_url=self.api_url, timeout=30) as http:
            while time.monotonic() < deadline:
                try:
                    resp = http.post("/v1/jobs", json=job_body(i), headers=headers)
                    if resp.status_code in (200, 201):
                        with self.lock:
                            self.ids[i] = resp.json()["id"]
                        return
                except httpx.HTTPError:
                    pass  # the API is down (killed, restarting): same key, again
                with self.lock:
                    self.submit_retries += 1
                time.sleep(0.5)
        with self.lock:
            self.not_accepted.append(i)

    def follow_up(self, job_id: str, revisions: int) -> None:
        """Post the job's follow-up once: a reply lost to a dying API is checked against the revisions the job had
        at the first try (posting again would be the client's own duplicate)."""
        before = self.first_try.setdefault(job_id, revisions)
        try:
            with httpx.Client(base_url=self.api_url, timeout=30, headers=self.headers) as http:
                now = http.get(f"/v1/jobs/{job_id}")
                if now.status_code == 200 and len(now.json()["revisions"]) > before:
                    self.followed[job_id] = before
                    return
                if now.status_code != 200:
                    return
                resp = http.post(f"/v1/jobs/{job_id}/messages", json={"text": "make the title bigger"})
                if resp.status_code == 202:
                    self.followed[job_id] = before
        except httpx.HTTPError:
            pass  # tried again on the next look


# ---- the process faults ---------------------------------------------------------------------------------------


class Monkey(threading.Thread):
    def __init__(self, stack: ChaosStack, every_s: float) -> None:
        super().__init__(daemon=True, name="monkey")
        self.stack, self.every_s = stack, every_s
        self.stop_event = threading.Event()
        self.done: Counter[str] = Counter()
        self.errors: list[str] = []
        self.last_fault_at = 0.0
        self.rounds = 0
        self.lock = threading.Lock()  # a fault and the supervisor's restarts never interleave
        self.exited: Counter[str] = Counter()  # roles that exited on their own, restarted by `supervise`

    def run(self) -> None:
        step = 0
        while not self.stop_event.wait(self.every_s):
            action = ROUND[step % len(ROUND)]
            try:
                with self.lock:
                    getattr(self, action)()
                self.done[action] += 1
            except Exception as exc:  # recorded: a fault that could not be made is part of the report
                self.errors.append(f"{action}: {type(exc).__name__}: {exc}")
            self.last_fault_at = time.monotonic()
            step += 1
            self.rounds = step // len(ROUND)

    def supervise(self) -> list[str]:
        """Restart any role that exited on its own, as compose's `restart:` or Kubernetes would (a Celery worker
        can exit on a broker connection lost mid-recovery); the report counts them."""
        restarted = []
        with self.lock:
            for name, role in list(self.stack.roles.items()):
                if role.popen.poll() is not None:
                    self.stack.start_role(name)
                    self.exited[name] += 1
                    restarted.append(f"{name} (exit {role.popen.returncode})")
        return restarted

    def _restart(self, role: str) -> None:
        self.stack.kill_role(role)
        self.stack.start_role(role)

    def kill_streams(self) -> None:
        self._restart("streams")

    def kill_steps(self) -> None:
        self._restart("steps")

    def kill_api(self) -> None:
        self._restart("api")

    def kill_beat(self) -> None:
        self._restart("beat")

    def flushall(self) -> None:
        self.stack.flushall()

    def restart_redis(self) -> None:
        self.stack.restart_redis_empty()

    def restart_postgres(self) -> None:
        self.stack.restart_postgres()


# ---- watching the jobs ----------------------------------------------------------------------------------------


def job_rows(stack: ChaosStack) -> list[tuple[str, str, str | None, int]]:
    """(id, status, error code, revisions) of every job, straight from the database."""
    url = f"postgresql://postgres@127.0.0.1:{stack.pg_port}/reelmill"
    with psycopg.connect(url, connect_timeout=3) as conn:
        return conn.execute(
            "SELECT j.id, j.status, j.error_code, (SELECT count(*) FROM job_turns t WHERE t.job_id = j.id) FROM jobs j"
        ).fetchall()


def look(stack: ChaosStack, work: Workload) -> tuple[int, int] | None:
    """One look: (jobs ended, jobs accepted); posts due follow-ups. None while the database is away."""
    try:
        rows = job_rows(stack)
    except psycopg.Error:
        return None
    wanted = {work.ids[i] for i in work.wants_follow_up if i in work.ids}
    ended = 0
    for job_id, status, _, revisions in rows:
        owes = status == "succeeded" and job_id in wanted and job_id not in work.followed
        if owes:
            work.follow_up(job_id, revisions)
        ended += status in TERMINAL and not owes
    return ended, len(work.ids)


def watch(stack: ChaosStack, work: Workload, monkey: Monkey, args: argparse.Namespace, started: float) -> float:
    """Until every job has ended (or the drain times out); stops the faults on the way. When all had ended."""
    submitting = threading.Thread(target=work.submit_all, daemon=True)
    submitting.start()
    while True:
        time.sleep(1.0)
        for exited in monkey.supervise():
            print(f"[{time.monotonic() - started:6.1f}s] {exited} exited on its own: restarted", flush=True)
        seen = look(stack, work)
        if seen is None:
            continue
        ended, accepted = seen
        elapsed = time.monotonic() - started
        chaos_over = monkey.rounds >= 1 and (ended >= args.chaos_until * args.jobs or elapsed > args.chaos_max_s)
        if monkey.is_alive() and chaos_over:
            monkey.stop_event.set()
            monkey.join()
            print(f"[{elapsed:6.1f}s] faults stopped: {dict(monkey.done)}", flush=True)
        print(f"[{elapsed:6.1f}s] accepted {accepted}/{args.jobs}, ended {ended}", flush=True)
        all_in = not submitting.is_alive() and accepted + len(work.not_accepted) == args.jobs
        if not monkey.is_alive() and all_in and ended == accepted:
            return time.monotonic()
        if not monkey.is_alive() and time.monotonic() - monkey.last_fault_at > args.drain_timeout:
            return time.monotonic()


# ---- the report -----------------------------------------------------------------------------------------------


def collect(stack: ChaosStack, work: Workload, monkey: Monkey, ended_at: float, started: float) -> dict[str, Any]:
    rows = _rows_when_up(stack)
    by_id = {r[0]: r for r in rows}
    accepted = set(work.ids.values())
    statuses = Counter(by_id[j][1] for j in accepted if j in by_id)
    failed = Counter(by_id[j][2] for j in accepted if j in by_id and by_id[j][1] == "failed")
    counters = httpx.get(f"{stack.sim_url}/_sim/counters", timeout=60).json()
    summary = counters["summary"]
    per_session = counters["per_session"].values()
    return {
        "jobs": work.args.jobs,
        "accepted": len(accepted),
        "not_accepted": len(work.not_accepted),
        "lost": len(accepted - by_id.keys()),
        "stuck": sum(n for s, n in statuses.items() if s not in TERMINAL),
        "succeeded": statuses["succeeded"],
        "failed": dict(failed),
        "canceled": statuses["canceled"],
        "follow_ups_posted": len(work.followed),
        "duplicate_messages": summary["duplicate_messages"],
        "duplicate_renders": summary["duplicate_renders"],
        "sessions": summary["sessions"],
        "extra_sessions": summary["sessions"] - len(accepted),
        "sessions_without_a_message": sum(1 for s in per_session if s["messages_sent"] == 0),
        "messages_sent": summary["messages_sent"],
        "duplicates": duplicates(counters),
        "renders_submitted": summary["renders_submitted"],
        "upstream_faults_fired": counters["faults_fired"]["by_kind"],
        "process_faults": dict(monkey.done),
        "process_fault_errors": monkey.errors,
        "roles_exited_on_their_own": dict(monkey.exited),
        "submit_retries": work.submit_retries,
        "makespan_s": round(ended_at - started, 1),
        "drain_s_after_last_fault": round(ended_at - monkey.last_fault_at, 1),
    }


def duplicates(counters: dict[str, Any]) -> list[dict[str, Any]]:
    """Evidence for each session that got a message or a render twice (the job is named in its messages)."""
    out = []
    for sid in counters["summary"]["sessions_with_duplicates"]:
        session = counters["per_session"][sid]
        out.append(
            {
                "session_id": sid,
                "messages": session["duplicate_messages"],
                "renders": session["duplicate_renders"],
                "sent": session["messages_sent"],
                "edits": session["edits_applied"],
            }
        )
    return out


def _rows_when_up(stack: ChaosStack) -> list[tuple[str, str, str | None, int]]:
    deadline = time.monotonic() + 60
    while True:
        try:
            return job_rows(stack)
        except psycopg.Error:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def misses(results: dict[str, Any]) -> list[str]:
    out = [f"{name}: {results[name]}" for name in ("lost", "not_accepted", "stuck") if results[name]]
    out += [f"{name}: {results[name]}" for name in ("duplicate_messages", "duplicate_renders") if results[name]]
    fixable = {code: n for code, n in results["failed"].items() if code not in UNFIXABLE}
    if fixable:
        out.append(f"failures a retry could fix: {fixable}")
    return out


# ---- main -----------------------------------------------------------------------------------------------------


def setup(args: argparse.Namespace, stack: ChaosStack) -> str:
    """Start everything; the tenant's API key."""
    stack.init_postgres()
    stack.start_redis()
    stack.start_sim()
    body = {"token": stack.token, "credits": 10**9}
    httpx.post(f"{stack.sim_url}/_sim/tokens", json=body, timeout=10).raise_for_status()
    stack.reelmill("migrate")
    key = stack.reelmill("keys", "create", "--tenant", "chaos").strip().splitlines()[-1]
    for role in ("api", "steps", "streams", "beat"):
        stack.start_role(role)
    stack.wait_api()
    stack.wait_ready("steps")
    stack.wait_ready("streams")
    chaos = {"rate": args.rate, "retry_after": 1}
    httpx.post(f"{stack.sim_url}/_sim/faults/chaos", json=chaos, timeout=10).raise_for_status()
    return key


def report(args: argparse.Namespace, stack: ChaosStack, results: dict[str, Any]) -> dict[str, Any]:
    missed = misses(results)
    doc = {
        "command": "uv run python bench/chaos.py " + " ".join(sys.argv[1:]),
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "parameters": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "reelmill_settings": stack.settings,
        "simulator": {**stack.sim_env, "chaos_preset": {"rate": args.rate, "retry_after": 1}},
        "credential": "a configured token (REELMILL_NEMO_TOKEN), registered in the simulator",
        "results": results,
        "target": {"met": not missed, "misses": missed},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(json.dumps({"results": results, "target": doc["target"]}, indent=2))
    return doc


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, exit_on_sigterm)  # a SIGTERM still stops every process the run started
    token = "nmv_usr_chaos_" + secrets.token_urlsafe(18)
    stack = ChaosStack(reelmill_settings(args.time_scale), sim_settings(args), token, keep=args.keep)
    monkey = Monkey(stack, args.fault_every)
    try:
        key = setup(args, stack)
        work = Workload(stack.api_url, key, args)
        started = time.monotonic()
        monkey.start()
        ended_at = watch(stack, work, monkey, args, started)
        doc = report(args, stack, collect(stack, work, monkey, ended_at, started))
    finally:
        monkey.stop_event.set()  # no process restarted behind the cleanup's back
        if monkey.is_alive():
            monkey.join()
        stack.close()
        if args.keep:
            print(f"logs and database kept in {stack.home}")
    return 0 if doc["target"]["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
