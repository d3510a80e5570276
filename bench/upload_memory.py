"""Benchmark: NemoClient uploads a 200 MB file with flat memory.

Starts the simulator (``python -m services.cli.main sim``) on a free loopback port, creates a 200 MB file in
a temp dir (sparse by default, ``--random`` for incompressible bytes), uploads it through NemoClient with
an anonymous token it mints, and prints this process's RSS before/after, its peak (``ru_maxrss``, and
VmRSS sampled every 10 ms during the upload), plus throughput. Writes the figures to
``bench/results/upload_memory.json``. Target: peak RSS < 100 MB.

    uv run python bench/upload_memory.py [--size-mb 200] [--random]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from shared.nemo.client import NemoClient  # noqa: E402
from shared.nemo.tokens import AnonymousTokenProvider  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "upload_memory.json"
TARGET_PEAK_MB = 100.0
MB = 1024 * 1024


def rss_mb() -> float:
    """Current resident set size of this process (Linux /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


@contextlib.contextmanager
def rss_sampler(every_s: float = 0.01) -> Iterator[list[float]]:
    """Samples VmRSS in a thread while the block runs (ru_maxrss is only updated lazily by the kernel)."""
    samples: list[float] = []
    done = threading.Event()

    def sample() -> None:
        while not done.wait(every_s):
            samples.append(rss_mb())

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield samples
    finally:
        done.set()
        thread.join()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def simulator() -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "REELMILL_SIM_TIME_SCALE": "0.01"}
    cmd = [sys.executable, "-m", "services.cli.main", "sim", "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"simulator exited with {proc.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                httpx.get(f"{url}/_sim/health", timeout=1).raise_for_status()
                break
            time.sleep(0.1)
        else:
            raise TimeoutError("simulator did not start")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def make_file(path: Path, size: int, randomize: bool) -> None:
    with path.open("wb") as out:
        if not randomize:
            out.truncate(size)  # sparse: no disk, reads as zeros
            return
        for _ in range(size // MB):
            out.write(os.urandom(MB))
        out.write(os.urandom(size % MB))


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(MB), b""):
            digest.update(block)
    return digest.hexdigest()


def run(size_mb: int, randomize: bool) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="reelmill-bench-") as tmp, simulator() as url:
        path = Path(tmp) / "big_upload.mp4"
        make_file(path, size_mb * MB, randomize)
        with NemoClient(url, timeout_s=60.0) as client:
            client.tokens = AnonymousTokenProvider(client.mint_anonymous_token, "bench-upload-memory")
            session = client.create_session()
            rss_before = rss_mb()
            started = time.perf_counter()
            with rss_sampler() as samples:
                uploaded = client.upload_files(session.session_id, [path])
            seconds = time.perf_counter() - started
            rss_after = rss_mb()
            peak = peak_rss_mb()
        expected_hash = sha256_of(path)
    reported_hash = uploaded[0].hash or ""
    return {
        "file_mb": size_mb,
        "file_kind": "random" if randomize else "sparse",
        "rss_before_mb": round(rss_before, 1),
        "rss_after_mb": round(rss_after, 1),
        "peak_rss_mb": round(peak, 1),
        "sampled_peak_rss_mb": round(max(samples, default=rss_after), 1),
        "rss_samples": len(samples),
        "target_peak_mb": TARGET_PEAK_MB,
        "peak_ok": max(peak, *samples) < TARGET_PEAK_MB,
        "seconds": round(seconds, 3),
        "throughput_mb_s": round(size_mb / seconds, 1),
        "upstream_filename": uploaded[0].filename,
        "hash_matches": reported_hash.removeprefix("sha256:") == expected_hash,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--random", action="store_true", help="random bytes instead of a sparse file")
    args = parser.parse_args()
    figures = run(args.size_mb, args.random)
    for key, value in figures.items():
        print(f"{key:>20}: {value}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"written to {RESULTS.relative_to(ROOT)}")
    if not figures["peak_ok"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
