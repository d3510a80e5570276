"""Nothing blocks the API's event loop: with every DNS lookup hanging, job intake with 20 asset URLs and a webhook
per job answers at once (asset URLs are not resolved; a webhook is resolved only when it is sent), and `/healthz`
keeps answering in milliseconds meanwhile."""

from __future__ import annotations

import os
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.api.served import ServedApi
from tests.utils import stack


@pytest.fixture()
def hanging_api(database: str, redis_url: str, sim_url: str, tmp_path: Path):
    log = tmp_path / "dns.log"
    log.touch()
    env = {
        **os.environ,
        "REELMILL_TEST_DNS_LOG": str(log),
        "REELMILL_OUTBOUND_ALLOW_PRIVATE": "false",
        "REELMILL_CREDIT_ADMISSION": "false",  # the balance is not what this test is about
    }
    api = ServedApi(env, argv_prefix=[sys.executable, "-m", "tests.api.hanging_dns"]).start()
    try:
        yield api, log
    finally:
        api.stop()


def job_body(n: int) -> dict:
    assets = [f"https://cdn{i}.media-{n}.example.test/clip{i}.mp4" for i in range(20)]
    return {"prompt": f"a fox number {n}", "assets": assets, "webhook": f"https://hooks-{n}.example.test/in"}


def test_healthz_answers_in_milliseconds_while_dns_hangs(hanging_api) -> None:
    api, dns_log = hanging_api
    key = stack.new_tenant("dns").key
    latencies: list[float] = []
    stop = threading.Event()

    def probe() -> None:
        with httpx.Client(base_url=api.url, timeout=10) as http:
            while not stop.is_set():
                started = time.monotonic()
                assert http.get("/healthz").status_code == 200
                latencies.append(time.monotonic() - started)
                time.sleep(0.01)

    prober = threading.Thread(target=probe, daemon=True)
    prober.start()
    try:
        with api.client(key, timeout=20) as http, ThreadPoolExecutor(10) as pool:
            answers = list(pool.map(lambda n: http.post("/v1/jobs", json=job_body(n)), range(10)))
            batch = "prompt,asset_urls\n" + "".join(
                f"clip {i},https://cdn.row{i}.example.test/a.jpg\n" for i in range(50)
            )
            batch_answer = http.post(
                "/v1/batches",
                files={"file": ("b.csv", batch.encode(), "text/csv")},
                data={"webhook": "https://hooks.example.test/batch"},
            )
    finally:
        stop.set()
        prober.join(timeout=15)
    assert [a.status_code for a in answers] == [201] * 10, [a.text for a in answers if a.status_code != 201]
    assert batch_answer.status_code == 201, batch_answer.text
    assert dns_log.read_text() == "", "intake made a DNS lookup"
    assert len(latencies) >= 5
    median, worst = statistics.median(latencies) * 1000, max(latencies) * 1000
    print(f"healthz while intake ran: median {median:.1f} ms, max {worst:.1f} ms over {len(latencies)} probes")
    assert max(latencies) < 1.0  # milliseconds in practice; the bound only says "never stuck behind a lookup"
    with api.client(key) as http:
        for answer in answers:
            http.post(f"/v1/jobs/{answer.json()['id']}/cancel")
        http.post(f"/v1/batches/{batch_answer.json()['id']}/cancel")
