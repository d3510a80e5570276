"""A client generated from the served `/openapi.json` by openapi-python-client works against the real stack: it
creates a job, reads it until `succeeded` and finds it in the list, all through its typed models. And the API's
own models (services/api/schemas) name every field a job carries: nothing a client gets is undocumented."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from services.api.schemas.jobs import JobPage, JobPublic
from tests.api.served import ServedApi
from tests.utils import stack
from tests.utils.waiting import wait_until

pytestmark = pytest.mark.slow
PACKAGE = "reelmill_generated_client"


@pytest.fixture()
def served_stack(services, sim) -> Iterator[ServedApi]:
    """A real API process beside the session's worker, the simulator funded."""
    sim.configure(anonymous_credits=1_000_000)
    api = ServedApi({**os.environ}).start()
    try:
        yield api
    finally:
        api.stop()


def generate(url: str, where: Path) -> ModuleType:
    spec = where / "openapi.json"
    spec.write_bytes(httpx.get(f"{url}/openapi.json", timeout=30).content)
    tool = Path(sys.executable).with_name("openapi-python-client")
    argv = [str(tool), "generate", "--path", str(spec), "--output-path", str(where / PACKAGE), "--meta", "none"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=where)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    sys.path.insert(0, str(where))
    try:
        return importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(where))


@pytest.fixture()
def generated(served_stack: ServedApi, tmp_path: Path) -> Iterator[ModuleType]:
    yield generate(served_stack.url, tmp_path)
    for name in [n for n in sys.modules if n == PACKAGE or n.startswith(PACKAGE + ".")]:
        del sys.modules[name]


def test_a_generated_client_creates_reads_and_lists_a_job(served_stack: ServedApi, generated: ModuleType) -> None:
    api = importlib.import_module(f"{PACKAGE}.api.jobs")
    models = importlib.import_module(f"{PACKAGE}.models")
    create = importlib.import_module(f"{api.__name__}.create_v1_jobs_post")
    read = importlib.import_module(f"{api.__name__}.read_v1_jobs_job_id_get")
    index = importlib.import_module(f"{api.__name__}.index_v1_jobs_get")
    tenant = stack.new_tenant("generated")
    client = generated.AuthenticatedClient(base_url=served_stack.url, token=tenant.key)

    made = create.sync_detailed(client=client, body=models.JobSpec(prompt="a paper boat on a rainy street"))
    assert made.status_code == 201, made.content
    job = made.parsed
    assert isinstance(job, models.JobPublic) and isinstance(job.status, models.JobStatus)
    assert job.urls.get.endswith(f"/v1/jobs/{job.id}")

    def finished() -> Any:
        current = read.sync(job_id=job.id, client=client)
        assert isinstance(current, models.JobPublic), current
        return current if current.status in (models.JobStatus.SUCCEEDED, models.JobStatus.FAILED) else None

    done = wait_until(finished, timeout=120, what=f"job {job.id} to end", every=0.5)
    assert done.status == models.JobStatus.SUCCEEDED, done.error
    assert isinstance(done.output, models.OutputPublic) and done.output.url
    assert isinstance(done.revisions[0], models.RevisionPublic) and done.revisions_total == 1

    page = index.sync(client=client)
    assert isinstance(page, models.JobPage) and not page.has_more
    assert [j.id for j in page.data] == [job.id] and page.data[0].status == models.JobStatus.SUCCEEDED

    anonymous = generated.Client(base_url=served_stack.url)
    refused = read.sync(job_id=job.id, client=anonymous)
    assert isinstance(refused, models.ErrorBody) and refused.error.code == "unauthorized"


def undeclared(model: BaseModel, where: str = "") -> list[str]:
    """The keys a model kept without declaring them (its `extra`), anywhere inside it."""
    found = [f"{where}.{key}" for key in model.model_extra or {}]
    for name in type(model).model_fields:
        value = getattr(model, name)
        for i, item in enumerate(value if isinstance(value, list) else [value]):
            if isinstance(item, BaseModel):
                found += undeclared(item, f"{where}.{name}[{i}]")
    return found


def test_the_models_name_every_field_and_keep_the_json(served_stack: ServedApi) -> None:
    tenant = stack.new_tenant("models")
    with served_stack.client(tenant.key) as http:
        made = http.post("/v1/jobs", json={"prompt": "a red kite", "metadata": {"k": 1}, "assets": []})
        assert made.status_code == 201, made.text
        job_id = made.json()["id"]

        def done() -> dict[str, Any] | None:
            body = http.get(f"/v1/jobs/{job_id}").json()
            return body if body["status"] == "succeeded" and body["output"]["artifact"] else None

        raw = wait_until(done, timeout=120, what=f"job {job_id} to succeed with its artifact", every=0.5)
        listed = http.get("/v1/jobs").json()
    job = JobPublic.model_validate(raw)
    assert undeclared(job) == []
    assert job.model_dump(mode="json", exclude_unset=True) == raw
    page = JobPage.model_validate(listed)
    assert undeclared(page) == [] and page.model_dump(mode="json", exclude_unset=True) == listed
