"""`plan_mirror` (the engine's one call) against the real database, the source order through the outbound-URL
guard against the simulator, and the `artifact` webhook events."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from sqlalchemy import delete
from sqlmodel import select

from shared.artifacts.errors import SourceGone
from shared.artifacts.plan import plan_mirror
from shared.artifacts.source import SourceSpec, open_source
from shared.db import session_scope
from shared.domain import dispatch
from shared.nemo.upstream import get_client
from shared.settings import get_settings
from shared.tables import Artifact, Delivery, Event, Job, JobTurn
from tests.artifacts.helpers import row, succeeded_job, wait_artifact
from tests.utils.waiting import wait_until

pytestmark = pytest.mark.usefixtures("stack_ready")


class Recorder:
    def __init__(self) -> None:
        self.artifacts: list[tuple[str, float]] = []

    def job(self, job_id: str, seq: int, stage: str, countdown: float = 0.0) -> None:
        pass

    def delivery(self, delivery_id: str, countdown: float = 0.0) -> None:
        pass

    def artifact(self, artifact_id: str, countdown: float = 0.0) -> None:
        self.artifacts.append((artifact_id, countdown))


@pytest.fixture()
def recorder():
    previous, rec = dispatch.current(), Recorder()
    dispatch.install(rec)
    yield rec
    dispatch.install(previous)


def replan(job_id: str) -> None:
    with session_scope() as session:
        job = session.exec(select(Job).where(Job.id == job_id).with_for_update()).one()
        turn = session.exec(select(JobTurn).where(JobTurn.job_id == job_id, JobTurn.seq == 0)).one()
        plan_mirror(session, job, turn)


def test_plan_is_idempotent_and_sends_after_commit(api, tenant, recorder):
    job = wait_artifact(api, tenant, succeeded_job(api, tenant)["id"])
    with session_scope() as session:
        session.exec(delete(Artifact).where(Artifact.job_id == job["id"]))
    replan(job["id"])
    replan(job["id"])  # the same output recorded again: no second row, no second message
    planned = row(job["id"])
    assert planned.status == "pending" and planned.render_id == job["output"]["render_id"]
    assert planned.key == f"{planned.tenant_id}/{job['id']}/0.mp4"
    assert planned.store_url == get_settings().effective_artifact_store
    assert recorder.artifacts == [(planned.id, 0.0)]


def test_plan_does_nothing_when_mirroring_is_off(api, tenant, recorder, settings_env):
    job = wait_artifact(api, tenant, succeeded_job(api, tenant)["id"])
    with session_scope() as session:
        session.exec(delete(Artifact).where(Artifact.job_id == job["id"]))
    settings_env(REELMILL_ARTIFACT_STORE="none")
    replan(job["id"])
    with session_scope() as session:
        assert session.exec(select(Artifact).where(Artifact.job_id == job["id"])).all() == []
    assert recorder.artifacts == []
    view = api.get(f"/v1/jobs/{job['id']}", headers=tenant.headers).json()
    assert view["output"]["artifact"] is None
    assert api.get(f"/v1/jobs/{job['id']}/output", headers=tenant.headers).status_code == 404


def test_an_output_url_the_guard_refuses_falls_back_to_the_download_endpoint(api, tenant, sim, settings_env):
    job = succeeded_job(api, tenant)
    url = urlsplit(job["output"]["url"])
    foreign = url._replace(netloc=f"localhost:{url.port}").geturl()  # another origin than the upstream's
    settings_env(REELMILL_OUTBOUND_ALLOW_PRIVATE="false", REELMILL_OUTBOUND_ALLOW_HTTP="false")
    spec = SourceSpec(render_id=job["output"]["render_id"], profile=job["profile"], output_url=foreign)
    before = sim.counters()["endpoints"].get("render_output", 0)
    source = open_source(get_client(), spec, get_settings())
    try:
        assert source.name == "download_endpoint"
        assert b"".join(source.chunks())[4:8] == b"ftyp"
    finally:
        source.close()
    assert sim.counters()["endpoints"].get("render_output", 0) == before  # nothing was sent to the refused URL
    sim.configure(download_link="gone_404")
    with pytest.raises(SourceGone, match="outbound-URL guard: scheme must be https"):
        open_source(get_client(), spec, get_settings())


def test_artifact_events_reach_webhooks_that_ask_for_them(api, tenant):
    hook = "http://127.0.0.1:9/hooks"  # nothing listens: the delivery rows are what is checked
    asked = succeeded_job(api, tenant, webhook=hook, webhook_events_filter=["completed", "artifact"])
    plain = succeeded_job(api, tenant, webhook=hook)
    for job in (asked, plain):
        wait_artifact(api, tenant, job["id"])

    def delivered_types(job_id: str) -> list[str]:
        with session_scope() as session:
            rows = session.exec(
                select(Event.type, Event.data)
                .join(Delivery, Delivery.event_id == Event.id)
                .where(Delivery.job_id == job_id)
            ).all()
        return sorted(t for t, _ in rows)

    got = wait_until(lambda: (t := delivered_types(asked["id"])) and "job.artifact.stored" in t and t, 30, "event")
    assert got == ["job.artifact.stored", "job.succeeded"]
    assert delivered_types(plain["id"]) == ["job.started", "job.succeeded"]
    with session_scope() as session:
        data = dict(session.exec(select(Event.type, Event.data).where(Event.job_id == asked["id"])).all())
    stored = data["job.artifact.stored"]["output"]["artifact"]
    assert stored["status"] == "stored" and stored["sha256"] == row(asked["id"]).sha256
    assert stored["url"].endswith(f"/v1/jobs/{asked['id']}/output?revision=0")
    assert data["job.artifact.stored"]["revisions"][0]["output"]["artifact"] == stored
    assert data["job.succeeded"]["output"]["artifact"]["status"] in ("pending", "stored")


def test_every_redirect_of_a_foreign_output_url_passes_the_guard(api, tenant, sim):
    """A CDN link that redirects: each hop is checked before it is requested; a refused hop is never fetched."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from shared.urlguard import ForbiddenUrl

    job = succeeded_job(api, tenant)
    target = job["output"]["url"]

    class Redirect(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(302)
            self.send_header("Location", target)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    start = f"http://localhost:{server.server_address[1]}/cdn/out.mp4"
    try:
        hops: list[str] = []
        with get_client().open_url(start, guard=hops.append) as stream:
            assert b"".join(stream)[4:8] == b"ftyp"
        assert hops == [start, target]

        def refuse_second(url: str) -> None:
            hops.append(url)
            if url == target:
                raise ForbiddenUrl(url, "not allowed")

        hops.clear()
        before = sim.counters()["endpoints"].get("render_output", 0)
        with pytest.raises(ForbiddenUrl):
            get_client().open_url(start, guard=refuse_second)
        assert hops == [start, target]
        assert sim.counters()["endpoints"].get("render_output", 0) == before
    finally:
        server.shutdown()
