"""Crashes that are reelmill's own: a worker SIGKILLed while its message stream is open (issue 10, defect 4), Redis
restarted empty with jobs in flight, the API killed mid-request. None is ever a job's reason to fail, nor a reason
to send anything upstream twice. (tests/pipeline/test_crash_recovery.py has the kill during render polling, the
kill after the edit landed, and FLUSHALL.)

Defect 4 in three timings of the edit against the crash, with an agent run as long as the stream's cap (9 s at the
tests' time scale): the edit lands after the crash but before the recovery first looks; it lands after the
recovery has looked and found nothing yet; the message never reached the upstream at all.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
import redis

from tests.utils import proving as pv
from tests.utils import stack
from tests.utils.net import free_port, wait_http
from tests.utils.sim_admin import SimAdmin
from tests.utils.waiting import wait_until

pytestmark = pytest.mark.slow
SSE_CAP_S = float(stack.test_env()["REELMILL_SSE_MAX_S"])


@pytest.fixture()
def spare(services) -> Iterator[stack.Proc]:
    """A second worker on every queue, so a killed worker's job is taken over as soon as its lease runs out."""
    proc = stack.start_worker("spare")
    yield proc
    proc.stop()
    if services["worker"].popen.poll() is not None:  # the test killed the session's worker: put one back
        services["worker"] = stack.start_worker("worker")


def session_id_of(job_id: str) -> str:
    return wait_until(lambda: pv.job_row(job_id).session_id, what="the job's session")


def kill_holder(job_id: str, procs: list[stack.Proc]) -> stack.Proc:
    """SIGKILL the worker process that holds the job's lease (`<host>:<pid>:<boot>`)."""
    owner = wait_until(lambda: pv.job_row(job_id).lease_owner, what="a worker holding the job")
    pid = int(owner.split(":")[1])
    proc = next(p for p in procs if p.popen.pid == pid)
    proc.kill()
    return proc


def accepted_not_edited(sim: SimAdmin, sid: str) -> bool:
    view = sim.session(sid)
    return view["runs_in_progress"] >= 1 and view["draft_version"] == 0


def assert_sent_once(sim: SimAdmin, job_id: str, done: dict) -> None:
    assert done["status"] == "succeeded", done["error"]
    sid = pv.job_row(job_id).session_id
    activity = sim.activity(sid)
    assert sim.session_count(sid, "run_sse") == 1, "the message was sent once"
    assert (activity["messages_sent"], activity["edits_applied"], activity["renders_submitted"]) == (1, 1, 1)
    sim.assert_no_duplicates()


def looks(services_procs: list[stack.Proc], job_id: str) -> list[str]:
    """What each look at the draft by a recovering worker concluded, in order."""
    lines = [d for p in services_procs for d in pv.log_lines(p.log, job_id)]
    lines.sort(key=lambda d: d.get("ts", ""))
    return [n for d in lines for n in pv.RECOVER_NOTES if d.get("msg", "").startswith("-> ") and n in d["msg"]]


def test_crash_before_the_edit_lands(api, tenant, proving: SimAdmin, services, spare):
    """Killed right after the upstream took the message, before its edit: the recovery finds the edit, never
    resends, never fails `empty_draft`."""
    sim = proving
    sim.configure(message_seconds=900.0, edit_at=0.3)  # a 9 s run (the stream's cap); its edit lands 2.7 s in
    job = pv.submit(api, tenant)
    sid = session_id_of(job["id"])
    wait_until(lambda: accepted_not_edited(sim, sid), what="the message taken, its edit not landed yet")
    kill_holder(job["id"], [services["worker"], spare])
    assert sim.session(sid)["draft_version"] == 0, "the worker died before the edit landed"
    done = stack.wait_job(api, tenant, job["id"], timeout=90)
    assert_sent_once(sim, job["id"], done)
    seen = looks([services["worker"], spare], job["id"])
    assert seen[-1] == "message landed" and "the message never ran: sending it again" not in seen, seen


def test_crash_and_the_edit_lands_after_the_recovery_looked(api, tenant, proving: SimAdmin, services):
    """The edit lands seconds after the recovering worker first looked and saw no change: it waits for it (up to
    the stream's cap since the send began) instead of taking the message as lost, or as landed."""
    sim = proving
    sim.configure(message_seconds=900.0, edit_at=0.8)  # a 9 s run (the stream's cap); its edit lands 7.2 s in
    with pv.WorkerSwap(services) as swap:  # short leases: the survivor looks within ~3 s of the kill
        workers = [swap.start(name, "steps,webhooks,streams", REELMILL_LEASE_S="1.5") for name in ("one", "two")]
        job = pv.submit(api, tenant)
        sid = session_id_of(job["id"])
        wait_until(lambda: accepted_not_edited(sim, sid), what="the message taken, its edit not landed yet")
        kill_holder(job["id"], workers)
        done = stack.wait_job(api, tenant, job["id"], timeout=90)
    assert_sent_once(sim, job["id"], done)
    seen = looks(workers, job["id"])
    assert seen[0] == "waiting for an edit that may still be running upstream", seen
    assert seen[-1] == "message landed" and "the message never ran: sending it again" not in seen, seen


def test_crash_before_the_message_reached_the_upstream(api, tenant, proving: SimAdmin, services, sim_url):
    """The worker died while its send hung before reaching the upstream: nothing ran. The recovery waits out the
    stream's cap from the send (an edit could still land until then), then sends the message, once."""
    from tests.utils.tcp import SwitchPort

    sim = proving
    hole = SwitchPort(int(sim_url.rsplit(":", 1)[1]))
    hole.swallow()  # the streams worker's requests go in and nothing comes back
    try:
        with pv.WorkerSwap(services) as swap:
            swap.start("steps", "steps,webhooks")
            stuck = swap.start("streams-stuck", "streams", REELMILL_NEMO_BASE_URL=hole.url)
            job = pv.submit(api, tenant)
            first = wait_until(
                lambda: (lambda t: t.message_state == "sending" and t.message_sent_at)(pv.turn_row(job["id"])),
                what="the send under way",
            )
            stuck.kill()
            swap.start("streams", "streams")
            done = stack.wait_job(api, tenant, job["id"], timeout=90)
    finally:
        hole.close()
    assert_sent_once(sim, job["id"], done)
    resent = pv.turn_row(job["id"]).message_sent_at
    assert (resent - first).total_seconds() >= SSE_CAP_S, "sent again only once the stream's cap had passed"
    assert pv.turn_row(job["id"]).message_attempts == 2


# ---- Redis restarted empty ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_restarter(redis_url: str) -> Iterator:
    """``restart()`` stops the session's Redis without saving and starts an empty one on the same port (kept for the
    rest of the session)."""
    started: list = []

    def restart() -> None:
        with contextlib.suppress(redis.ConnectionError):  # it closes the connection as it goes
            redis.Redis(port=stack.REDIS_PORT).shutdown(nosave=True)
        wait_until(lambda: not _answers(stack.REDIS_PORT), what="Redis to stop")
        started.append(stack.start_redis(stack.REDIS_PORT))

    yield restart
    for proc in started:
        proc.terminate()
        proc.wait(timeout=10)


def _answers(port: int) -> bool:
    try:
        return bool(redis.Redis(port=port, socket_connect_timeout=0.2).ping())
    except redis.ConnectionError:
        return False


def test_redis_restarted_empty_with_jobs_in_flight(api, tenant, proving: SimAdmin, redis_restarter):
    sim = proving
    sim.configure(message_seconds=150.0, render_seconds=300.0)  # 1.5 s streams, 3 s renders
    jobs = [pv.submit(api, tenant, prompt=f"clip {i}: the harbour at dawn") for i in range(8)]

    def in_flight() -> bool:
        stages = [pv.job_row(j["id"]).stage for j in jobs]
        return sum(s in ("message", "verify", "render_submit", "render_poll") for s in stages) >= 4

    wait_until(in_flight, what="jobs in flight")
    marker = f"proving:before-restart:{uuid.uuid4().hex}"
    redis.Redis(port=stack.REDIS_PORT).set(marker, "1")
    redis_restarter()
    # (the roles reconnect at once and write their own keys again: only what was there before must be gone)
    assert not redis.Redis(port=stack.REDIS_PORT).exists(marker), "the new Redis starts empty"
    for job in jobs:
        done = stack.wait_job(api, tenant, job["id"], timeout=120)
        assert done["status"] == "succeeded", (job["id"], done["error"])
        activity = sim.activity(pv.job_row(job["id"]).session_id)
        assert (activity["messages_sent"], activity["renders_submitted"]) == (1, 1), job["id"]
    sim.assert_no_duplicates()


# ---- the API killed mid-request -------------------------------------------------------------------------------


@pytest.fixture()
def api_process(database, redis_url) -> Iterator[dict]:
    """`reelmill api` as its own process; ``state["restart"]()`` starts it again on the same port."""
    port = free_port()
    state: dict = {"url": f"http://127.0.0.1:{port}"}

    def start() -> None:
        state["proc"] = stack.start_process("api", ["api", "--port", str(port)])
        wait_http(f"{state['url']}/healthz", proc=state["proc"].popen)

    state["restart"] = start
    start()
    yield state
    state["proc"].stop()


def jobs_with_key(key: str) -> list:
    from sqlmodel import select

    from shared.db import session_scope
    from shared.tables import Job

    with session_scope() as session:
        return list(session.exec(select(Job.id).where(Job.idempotency_key == key)))


def test_api_killed_while_a_file_is_uploading(api_process, tenant, proving: SimAdmin):
    """SIGKILL while the request body is still arriving: no job was written; the client's retry (same
    Idempotency-Key) makes one job, which runs to the end, its message sent once."""
    key = f"upload-{uuid.uuid4().hex}"
    headers = {**tenant.headers, "Idempotency-Key": key}
    boundary = "proving-boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="job"\r\n\r\n{{"prompt": "cut this clip"}}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="clip.mp4"\r\n'
        "Content-Type: video/mp4\r\n\r\n"
    ).encode()
    chunk = b"\0" * 65536
    halfway = threading.Event()
    release = threading.Event()

    def body() -> Iterator[bytes]:
        yield head
        for i in range(64):
            if i == 8:
                halfway.set()
                release.wait(30)
            yield chunk
        yield f"\r\n--{boundary}--\r\n".encode()

    def send() -> None:
        with contextlib.suppress(httpx.HTTPError):  # the server dies under it
            httpx.post(
                f"{api_process['url']}/v1/jobs",
                content=body(),
                headers={**headers, "Content-Type": f"multipart/form-data; boundary={boundary}"},
                timeout=30,
            )

    sender = threading.Thread(target=send)
    sender.start()
    assert halfway.wait(30)
    time.sleep(0.2)  # the first half is in the server's hands
    os.kill(api_process["proc"].popen.pid, signal.SIGKILL)
    api_process["proc"].popen.wait(10)
    release.set()
    sender.join(30)
    assert jobs_with_key(key) == [], "nothing written for a request that never finished"

    api_process["restart"]()
    payload = b"".join([head, chunk * 64, f"\r\n--{boundary}--\r\n".encode()])
    content_type = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    resp = httpx.post(f"{api_process['url']}/v1/jobs", content=payload, headers={**headers, **content_type})
    assert resp.status_code == 201, resp.text
    done = stack.wait_job(_Http(api_process["url"]), tenant, resp.json()["id"], timeout=60)
    assert done["status"] == "succeeded", done["error"]
    assert done["files"] == [{"filename": "clip.mp4", "size": 64 * 65536}]
    assert jobs_with_key(key) == [resp.json()["id"]]
    assert sim_sent_once(proving, resp.json()["id"])


def test_api_killed_after_the_job_was_written(api_process, tenant, proving: SimAdmin):
    """SIGKILL while the API holds a `Prefer: wait` answer (the job is written, the client has no reply): the job
    runs on without the API, and the client's retry with the same Idempotency-Key gets that job, not a second one."""
    proving.configure(message_seconds=300.0)  # a 3 s stream: the job is still running when the API dies
    key = f"wait-{uuid.uuid4().hex}"
    headers = {**tenant.headers, "Idempotency-Key": key, "Prefer": "wait=30"}
    body = {"prompt": "a lighthouse in a storm"}
    outcome: dict = {}

    def send() -> None:
        try:
            outcome["resp"] = httpx.post(f"{api_process['url']}/v1/jobs", json=body, headers=headers, timeout=40)
        except httpx.HTTPError as exc:
            outcome["error"] = exc

    sender = threading.Thread(target=send)
    sender.start()
    written = wait_until(lambda: jobs_with_key(key), what="the job written")
    os.kill(api_process["proc"].popen.pid, signal.SIGKILL)
    sender.join(30)
    assert "error" in outcome, "the client got no reply"

    api_process["restart"]()
    resp = httpx.post(f"{api_process['url']}/v1/jobs", json=body, headers=headers, timeout=40)
    assert resp.status_code == 201, resp.text
    assert resp.headers.get("Idempotent-Replayed") == "true"
    assert resp.json()["id"] == written[0]
    done = stack.wait_job(_Http(api_process["url"]), tenant, written[0], timeout=60)
    assert done["status"] == "succeeded", done["error"]
    assert jobs_with_key(key) == written
    assert sim_sent_once(proving, written[0])


def sim_sent_once(sim: SimAdmin, job_id: str) -> bool:
    activity = sim.activity(pv.job_row(job_id).session_id)
    sim.assert_no_duplicates()
    return (activity["messages_sent"], activity["renders_submitted"]) == (1, 1)


class _Http:
    """The bits of a TestClient that stack.wait_job uses, over real HTTP."""

    def __init__(self, url: str) -> None:
        self.url = url

    def get(self, path: str, headers: dict[str, str]) -> httpx.Response:
        return httpx.get(self.url + path, headers=headers, timeout=10)
