"""Benchmark: mirror a 500 MB render output to the local store and to an S3 endpoint, in flat memory.

Starts the simulator (500 MB outputs) and moto's S3 server on free loopback ports, makes one completed render
through NemoClient, then, once per store, runs the mirror's byte path (``open_source`` + ``copy_into``: exactly
what the worker's mirror task runs between claiming the artifact row and settling it) in a child process whose
RSS the parent samples with psutil every 10 ms. The child imports only what that path needs; its token comes
through the environment, never its arguments. The stored object's sha256 is checked against the simulator's.

Prints and writes ``bench/results/artifact_mirror.json``: per store, seconds, MB/s, the child's RSS before
the copy, its peak during the copy, and the growth. Target: peak RSS <= 50 MB.

    uv run python bench/artifact_mirror.py [--size-mb 500]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "bench" / "results" / "artifact_mirror.json"
TARGET_PEAK_MB = 50.0
MB = 1024 * 1024
TOKEN_ENV = "REELMILL_BENCH_NEMO_TOKEN"


def rss_mb(pid: int | None = None) -> float:
    import psutil

    return psutil.Process(pid).memory_info().rss / MB


def own_rss_mb() -> float:
    """The child's RSS read from /proc (Linux), so the measured process does not load psutil (~8 MB) to measure
    itself; the parent samples it from outside with psutil."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / MB


# ---- the child: the mirror's byte path, nothing else ---------------------------------------------------------


def child(store_url: str, key: str, render_id: str, output_url: str) -> None:
    from shared.artifacts.source import SourceSpec, open_source
    from shared.artifacts.stores import open_store
    from shared.artifacts.transfer import copy_into
    from shared.nemo.client import NemoClient
    from shared.nemo.tokens import StaticTokenProvider
    from shared.settings import get_settings

    settings = get_settings()
    client = NemoClient.from_settings(settings, StaticTokenProvider(os.environ[TOKEN_ENV]))
    store = open_store(store_url, settings)
    spec = SourceSpec(render_id=render_id, profile="ai-video-generator-free-kapwing", output_url=output_url)
    before = own_rss_mb()
    print(json.dumps({"ready": True, "rss_before_mb": before}), flush=True)
    started = time.perf_counter()
    source = open_source(client, spec, settings)
    try:
        copied = copy_into(source.chunks(), store, key, max_bytes=settings.artifact_max_bytes)
    finally:
        source.close()
    seconds = time.perf_counter() - started
    print(json.dumps({"sha256": copied.sha256, "size": copied.size, "seconds": seconds, "source": source.name}))


# ---- the parent -----------------------------------------------------------------------------------------------


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def server(args: list[str], health: str, env: dict[str, str] | None = None) -> Iterator[None]:
    import httpx

    proc = subprocess.Popen(
        args, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{args[2]} exited with {proc.returncode}")
            try:
                httpx.get(health, timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{health} did not answer") from None
                time.sleep(0.1)
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def completed_render(sim_url: str) -> tuple[str, str, str, str]:
    """(render id, output URL, token, the simulator's sha256 of the output) for one finished render."""
    import httpx

    from shared.nemo.client import NemoClient
    from shared.nemo.tokens import AnonymousTokenProvider

    client = NemoClient(sim_url)
    client.tokens = AnonymousTokenProvider(client.mint_anonymous_token, "bench-artifact-mirror")
    session = client.create_session()
    client.send_message(session.session_id, "Make a 30 second video of a city timelapse with lo-fi music")
    draft = client.get_state(session.session_id).draft
    render_id = f"render_bench_{uuid.uuid4().hex[:8]}"
    client.submit_render(render_id, session.session_id, draft or {})
    while (status := client.get_render(render_id)).status != "completed":
        if status.status == "failed":
            raise RuntimeError(f"render failed: {status}")
        time.sleep(0.2)
    sha = httpx.get(f"{sim_url}/_sim/renders/{render_id}", timeout=300).json()["output"]["sha256"]
    return render_id, str(status.output_url), client.tokens.token(), sha


def mirror_once(store_url: str, key: str, render: tuple[str, str, str, str], env: dict[str, str]) -> dict:
    render_id, output_url, token, _ = render
    cmd = [sys.executable, __file__, "--child", store_url, key, render_id, output_url]
    proc = subprocess.Popen(cmd, env={**os.environ, **env, TOKEN_ENV: token}, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    ready = json.loads(proc.stdout.readline())
    peak, done = [ready["rss_before_mb"]], threading.Event()

    def sample() -> None:
        while not done.is_set():
            with contextlib.suppress(Exception):
                peak.append(rss_mb(proc.pid))
            time.sleep(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out = proc.stdout.read()
    done.set()
    sampler.join()
    if proc.wait() != 0:
        raise RuntimeError(f"mirror child failed ({proc.returncode})")
    result = json.loads(out.strip().splitlines()[-1])
    return {**result, "rss_before_mb": ready["rss_before_mb"], "peak_rss_mb": max(peak), "samples": len(peak)}


def run(size_mb: int) -> dict:
    import boto3

    size = size_mb * 1_000_000
    sim_port, s3_port = free_port(), free_port()
    sim_url, s3_url = f"http://127.0.0.1:{sim_port}", f"http://127.0.0.1:{s3_port}"
    aws = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench-secret", "AWS_DEFAULT_REGION": "us-east-1"}
    os.environ.update(aws)
    sim_env = {"REELMILL_SIM_TIME_SCALE": "0.01", "REELMILL_SIM_OUTPUT_BYTES": str(size)}
    sim_cmd = [sys.executable, "-m", "services.cli.main", "sim", "--host", "127.0.0.1", "--port", str(sim_port)]
    moto_cmd = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(s3_port)]
    figures: dict[str, dict] = {}
    with server(sim_cmd, f"{sim_url}/_sim/health", sim_env), server(moto_cmd, f"{s3_url}/moto-api/"):
        render = completed_render(sim_url)
        bucket = f"bench-{uuid.uuid4().hex[:8]}"
        s3 = boto3.client("s3", endpoint_url=s3_url, region_name="us-east-1")
        s3.create_bucket(Bucket=bucket)
        env = {"REELMILL_NEMO_BASE_URL": sim_url, "REELMILL_S3_ENDPOINT_URL": s3_url}
        with tempfile.TemporaryDirectory(prefix="reelmill-bench-") as tmp:
            for name, store_url in (("local", Path(tmp).as_uri()), ("s3", f"s3://{bucket}/bench")):
                result = mirror_once(store_url, "t/job/0.mp4", render, env)
                assert result["sha256"] == render[3] and result["size"] == size, result
                figures[name] = summarize(result, size)
                print(f"{name:5s}: {figures[name]}", flush=True)
    return figures


def summarize(result: dict, size: int) -> dict:
    return {
        "bytes": size,
        "seconds": round(result["seconds"], 2),
        "throughput_mb_s": round(size / MB / result["seconds"], 1),
        "rss_before_copy_mb": round(result["rss_before_mb"], 1),
        "peak_rss_mb": round(result["peak_rss_mb"], 1),
        "rss_growth_mb": round(result["peak_rss_mb"] - result["rss_before_mb"], 1),
        "rss_samples": result["samples"],
        "sha256_matches": True,
        "source": result["source"],
        "meets_target": result["peak_rss_mb"] <= TARGET_PEAK_MB,  # the whole process, imports included
        "growth_within_target": result["peak_rss_mb"] - result["rss_before_mb"] <= TARGET_PEAK_MB,
    }


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(*sys.argv[2:6])
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=500)
    args = parser.parse_args()
    figures = run(args.size_mb)
    record = {
        "benchmark": "artifact_mirror",
        "target_peak_rss_mb": TARGET_PEAK_MB,
        "measured": "the child process running open_source + copy_into (the mirror task's byte path); "
        "rss_before_copy_mb is that process after its imports, before the first byte",
        "size_mb": args.size_mb,
        "stores": figures,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
