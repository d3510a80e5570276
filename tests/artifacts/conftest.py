"""Artifact test fixtures: a real S3 endpoint (moto's server mode, over HTTP on a free loopback port) for the whole
session, buckets, and a worker swapped in with a given artifact store for a module's tests."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from shared.artifacts.stores import reset_stores
from tests.utils import stack
from tests.utils.net import free_port, wait_http

AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "reelmill-test",
    "AWS_SECRET_ACCESS_KEY": "reelmill-test-secret",  # moto accepts any; never a real credential
    "AWS_DEFAULT_REGION": "us-east-1",
}
os.environ.update(AWS_ENV)  # boto3 in this process and in every worker started from it


@dataclass
class Moto:
    port: int
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        log = (stack.LOG_DIR / f"moto-{self.port}.log").open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        wait_http(f"{self.url}/moto-api/", timeout=120, proc=self.proc)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None

    def client(self) -> Any:
        return boto3.client("s3", endpoint_url=self.url, region_name="us-east-1")

    def new_bucket(self, name: str | None = None) -> str:
        bucket = name or f"reelmill-{uuid.uuid4().hex[:10]}"
        self.client().create_bucket(Bucket=bucket)
        return bucket


@pytest.fixture(scope="session")
def moto() -> Iterator[Moto]:
    server = Moto(free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


def swap_worker(services: dict[str, stack.Proc], name: str, **env: str) -> None:
    services["worker"].stop()
    services["worker"] = stack.start_worker(name, **env)


@pytest.fixture(scope="module")
def s3_stack(services: dict[str, stack.Proc], moto: Moto) -> Iterator[dict[str, str]]:
    """The session's worker replaced, for one module, by one whose artifacts go to a fresh moto bucket; this
    process (the in-process API) reads that bucket too."""
    from shared.settings import get_settings

    bucket = moto.new_bucket()
    env = {
        "REELMILL_ARTIFACT_STORE": f"s3://{bucket}/videos",
        "REELMILL_S3_ENDPOINT_URL": moto.url,
        "REELMILL_ARTIFACT_MAX_ATTEMPTS": "40",  # the store-down test restarts the server meanwhile
    }
    patch = pytest.MonkeyPatch()
    for name, value in env.items():
        patch.setenv(name, value)
    get_settings.cache_clear()
    reset_stores()
    swap_worker(services, "worker-s3", **env)
    try:
        yield {"bucket": bucket, **env}
    finally:
        patch.undo()
        get_settings.cache_clear()
        reset_stores()
        swap_worker(services, "worker")
