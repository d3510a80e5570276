"""A large upload streams from disk: the client's memory stays flat while 64 MB go out."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

from shared.nemo.profiles import KAPWING

SIZE = 64 * 1024 * 1024


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def test_streamed_upload_of_a_large_file(sim, client, tmp_path):
    big = tmp_path / "long_take.mov"
    with big.open("wb") as f:  # not sparse: real bytes, so a whole-file read would show in RSS
        block = hashlib.sha256(b"seed").digest() * (1024 * 1024 // 32)
        for _ in range(SIZE // len(block)):
            f.write(block)
    digest = hashlib.sha256()
    with big.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    expected = digest.hexdigest()
    sid = client.create_session().session_id

    samples: list[float] = []
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.005):
            samples.append(rss_mb())

    baseline = rss_mb()
    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        uploaded = client.upload_files(sid, [big], profile=KAPWING)
    finally:
        done.set()
        sampler.join()
    assert uploaded[0].hash == expected and uploaded[0].filename == "long_take.mov"
    assert sim.session(sid)["files"][0]["size"] == SIZE
    assert samples, "the upload finished before one RSS sample"
    assert max(samples) - baseline < 32, f"RSS grew {max(samples) - baseline:.1f} MB for a 64 MB upload"
