"""Helpers for the artifact tests: jobs through the real stack, artifact rows, the simulator's bytes."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, TypeVar

from sqlmodel import select

from shared.db import session_scope
from shared.tables import Artifact, Event
from tests.utils import stack
from tests.utils.waiting import wait_until

T = TypeVar("T")
FINAL = ("stored", "failed", "expired")


def submit(api: Any, tenant: stack.Tenant, **body: Any) -> dict[str, Any]:
    body = {"prompt": "a fox running through a snowy forest at dusk", **body}
    resp = api.post("/v1/jobs", json=body, headers=tenant.headers)
    assert resp.status_code == 201, resp.text
    return resp.json()


def succeeded_job(api: Any, tenant: stack.Tenant, **body: Any) -> dict[str, Any]:
    job = stack.wait_job(api, tenant, submit(api, tenant, **body)["id"], timeout=90)
    assert job["status"] == "succeeded", job["error"]
    return job


def wait_artifact(api: Any, tenant: stack.Tenant, job_id: str, timeout: float = 90) -> dict[str, Any]:
    """The job once its output's artifact is settled (stored, failed or expired)."""

    def settled() -> dict[str, Any] | None:
        job = api.get(f"/v1/jobs/{job_id}", headers=tenant.headers).json()
        artifact = (job.get("output") or {}).get("artifact") or {}
        return job if artifact.get("status") in FINAL else None

    return wait_until(settled, timeout, f"the artifact of {job_id}")


def rows_of(job_id: str) -> list[Artifact]:
    with session_scope() as session:
        return list(session.exec(select(Artifact).where(Artifact.job_id == job_id).order_by(Artifact.turn_seq)))


def row(job_id: str, turn_seq: int = 0) -> Artifact:
    found = [r for r in rows_of(job_id) if r.turn_seq == turn_seq]
    assert found, f"no artifact row for {job_id} turn {turn_seq}"
    return found[0]


def events_of(job_id: str, prefix: str = "job.artifact.") -> list[str]:
    with session_scope() as session:
        types = session.exec(select(Event.type).where(Event.job_id == job_id).order_by(Event.seq)).all()
    return [t for t in types if t.startswith(prefix)]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def local_path(artifact: Artifact) -> Path:
    assert artifact.store_url.startswith("file://"), artifact.store_url
    return Path(artifact.store_url.removeprefix("file://")) / artifact.key


def partials(root: Path) -> list[Path]:
    return [p for p in root.rglob("*.part")] if root.exists() else []
