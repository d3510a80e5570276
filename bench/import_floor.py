"""Benchmark: the memory a process holds before it moves a byte, layer by layer (issue 15's 50 MB is a whole
process's peak RSS, so this is the floor any mirror process starts from).

Each row is a fresh interpreter that imports one set of modules (and, for the S3 rows, builds the client, which
loads the service's model) and reports its own RSS from /proc: nothing else is loaded, nothing is copied. The
rows go from a bare interpreter to the artifacts worker itself.

Prints and writes ``bench/results/import_floor.json``.

    uv run python bench/import_floor.py
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "import_floor.json"
TARGET_MB = 50.0

S3_CLIENT = (
    "import boto3; boto3.client('s3', endpoint_url='http://127.0.0.1:9', region_name='us-east-1', "
    "aws_access_key_id='floor', aws_secret_access_key='floor')"
)
BYTE_PATH = (
    "import shared.artifacts.source, shared.artifacts.stores, shared.artifacts.transfer, shared.nemo.client, "
    "shared.settings; shared.settings.get_settings()"
)

# (what, the code the fresh interpreter runs)
LAYERS: list[tuple[str, str]] = [
    ("a bare interpreter", "pass"),
    ("ssl (any HTTPS client)", "import ssl"),
    ("httpx (NemoClient's HTTP), as installed here", "import httpx"),
    (
        "httpx without its optional command line (click, rich, pygments: installed for reelmill's CLI)",
        "import sys; sys.modules['httpx._main'] = None; import httpx",
    ),
    ("pydantic-settings (reelmill's settings)", "import pydantic_settings"),
    ("the mirror's byte path, local store (what bench/artifact_mirror.py measures)", BYTE_PATH),
    ("boto3's S3 client alone", S3_CLIENT),
    ("the mirror's byte path with boto3's S3 client", f"{BYTE_PATH}; {S3_CLIENT}"),
    ("celery, redis and sqlmodel (required by the project)", "import celery, redis, sqlmodel, kombu.transport.redis"),
    ("the artifacts worker's modules (a Celery worker running the mirror task)", "import services.worker.tasks"),
]

MEASURE = """
import os
{code}
with open('/proc/self/statm') as statm:
    print(int(statm.read().split()[1]) * os.sysconf('SC_PAGE_SIZE'))
"""


def rss_mb(code: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", MEASURE.format(code=code)], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return int(out.stdout.split()[-1]) / (1024 * 1024)


def main() -> None:
    rows = []
    for what, code in LAYERS:
        mb = round(min(rss_mb(code) for _ in range(3)), 1)  # the least of three: the floor, not a noisy run
        rows.append({"process": what, "rss_mb": mb, "within_target": mb <= TARGET_MB})
        print(f"{mb:6.1f} MB  {what}", flush=True)
    record = {
        "benchmark": "import_floor",
        "target_peak_rss_mb": TARGET_MB,
        "measured": "a fresh interpreter's RSS after the imports (and S3 client) of each row, before any work",
        "rows": rows,
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
