"""The seeds' three ways of working, through the API: iterate on a video, several clips in one session, intents
that skip the SSE call; plus the live event stream and the timeline."""

from __future__ import annotations

import json

import httpx
import pytest
from httpx_sse import connect_sse

from tests.pipeline.test_flow_e2e import session_of, submit
from tests.utils import stack

pytestmark = pytest.mark.usefixtures("stack_ready")


def follow_up(api, tenant, job_id, text, **extra):
    resp = api.post(f"/v1/jobs/{job_id}/messages", json={"text": text, **extra}, headers=tenant.headers)
    assert resp.status_code == 202, resp.text
    return resp.json()


def finished(api, tenant, job_id, revisions):
    return stack.wait_job(
        api,
        tenant,
        job_id,
        until=lambda j: (
            len(j["revisions"]) == revisions
            and j["revisions"][-1]["status"] in ("succeeded", "failed")
            and j["status"] in ("succeeded", "failed")
        ),
    )


def test_three_revisions_in_one_session(api, tenant, sim):
    sim.configure(silent_share=0.0)
    job = submit(api, tenant, prompt="a rough cut about city life")
    assert stack.wait_job(api, tenant, job["id"])["status"] == "succeeded"
    follow_up(api, tenant, job["id"], "make the title bigger and add lo-fi music")
    finished(api, tenant, job["id"], 2)
    follow_up(api, tenant, job["id"], "trim the intro to three seconds")
    done = finished(api, tenant, job["id"], 3)
    assert done["status"] == "succeeded", done["error"]
    outputs = [r["output"]["url"] for r in done["revisions"]]
    assert len(set(outputs)) == 3, "each revision rendered its own video"
    assert done["output"]["url"] == outputs[-1]
    assert [r["instruction"] for r in done["revisions"]][1:] == [
        "make the title bigger and add lo-fi music",
        "trim the intro to three seconds",
    ]
    sid = session_of(job["id"])
    detail = sim.session(sid)
    assert len(detail["messages"]) == 3, "all three instructions went to the same session"
    assert len(detail["renders"]) == 3
    assert sim.endpoint_count("session") >= 1
    bodies = {httpx.get(u).content for u in outputs}
    assert len(bodies) == 3, "three distinct videos"


def test_three_steps_three_renders_one_session(api, tenant, sim):
    sim.configure(silent_share=0.0)
    steps = [
        {"text": "clip one: a sunrise over the harbour", "assets": ["https://cdn.example.com/harbour.mp4"]},
        {"text": "clip two: the morning market", "assets": ["https://cdn.example.com/market.mp4"]},
        {"text": "clip three: evening lights"},
    ]
    resp = api.post("/v1/jobs", json={"steps": steps}, headers=tenant.headers)
    assert resp.status_code == 201, resp.text
    job = resp.json()
    assert job["prompt"] == steps[0]["text"]
    done = stack.wait_job(api, tenant, job["id"])
    assert done["status"] == "succeeded", done["error"]
    assert [r["status"] for r in done["revisions"]] == ["succeeded"] * 3
    assert len({r["output"]["url"] for r in done["revisions"]}) == 3
    sid = session_of(job["id"])
    assert len(sim.session(sid)["renders"]) == 3
    assert sim.session_count(sid, "run_sse") == 3
    assert sim.session_count(sid, "upload") == 2


def test_intents_skip_the_sse_call(api, tenant, sim):
    sim.configure(silent_share=0.0)
    job = submit(api, tenant)
    assert stack.wait_job(api, tenant, job["id"])["status"] == "succeeded"
    sid = session_of(job["id"])
    assert sim.session_count(sid, "run_sse") == 1

    follow_up(api, tenant, job["id"], "status")
    done = finished(api, tenant, job["id"], 2)
    assert done["revisions"][1]["intent"] == "state"
    assert done["revisions"][1]["messages"][-1].startswith("Timeline (")

    follow_up(api, tenant, job["id"], "余额")
    done = finished(api, tenant, job["id"], 3)
    assert done["revisions"][2]["intent"] == "credits"
    assert done["revisions"][2]["messages"][-1].startswith("Credits: ")

    follow_up(api, tenant, job["id"], "export")
    done = finished(api, tenant, job["id"], 4)
    assert done["revisions"][3]["intent"] == "export"
    assert done["revisions"][3]["output"]["url"] != done["revisions"][0]["output"]["url"]

    assert sim.session_count(sid, "run_sse") == 1, "no intent made an SSE call"
    assert len(sim.session(sid)["renders"]) == 2, "only the export rendered again"


def test_follow_up_on_an_expired_session_offers_a_new_job(api, tenant, sim):
    job = submit(api, tenant)
    assert stack.wait_job(api, tenant, job["id"])["status"] == "succeeded"
    sim.fault("run_sse", "code_1002", times=1)
    follow_up(api, tenant, job["id"], "now add captions")
    done = finished(api, tenant, job["id"], 2)
    assert done["status"] == "failed"
    assert done["error"]["code"] == "session_expired"
    assert "expired" in done["error"]["message"]
    suggestion = done["revisions"][1]["suggested_job"]
    assert [s["text"] for s in suggestion["steps"]] == [job["prompt"], "now add captions"]
    assert done["output"] == done["revisions"][0]["output"], "the last good video is kept"
    again = api.post("/v1/jobs", json=suggestion, headers=tenant.headers)
    assert again.status_code == 201, again.text
    # it runs to its end here: a job left running meets the next tests' simulator resets (and calls into them)
    assert stack.wait_job(api, tenant, again.json()["id"], timeout=90)["status"] == "succeeded"


def test_bad_follow_ups(api, tenant, sim):
    job = submit(api, tenant)
    blank = api.post(f"/v1/jobs/{job['id']}/messages", json={"text": " "}, headers=tenant.headers)
    assert blank.status_code == 422 and blank.json()["error"]["field"] == "text"
    api.post(f"/v1/jobs/{job['id']}/cancel", headers=tenant.headers)
    stack.wait_job(api, tenant, job["id"])
    late = api.post(f"/v1/jobs/{job['id']}/messages", json={"text": "more"}, headers=tenant.headers)
    assert late.status_code == 409
    other = stack.new_tenant()
    assert api.post(f"/v1/jobs/{job['id']}/messages", json={"text": "x"}, headers=other.headers).status_code == 404


def read_events(api, tenant, job_id, last_id=None, limit=None):
    """Read the job's event stream with an SSE client (httpx-sse), optionally cutting it after ``limit`` events."""
    headers = {**tenant.headers, **({"Last-Event-ID": str(last_id)} if last_id is not None else {})}
    got = []
    with connect_sse(api, "GET", f"/v1/jobs/{job_id}/events", headers=headers) as source:
        assert source.response.headers["content-type"].startswith("text/event-stream")
        for sse in source.iter_sse():
            got.append((int(sse.id), sse.event, json.loads(sse.data)))
            if limit and len(got) >= limit:
                break
    return got


def test_event_stream_resumes_without_gap_or_duplicate(api, tenant, sim):
    sim.configure(silent_share=0.0, message_seconds=300.0)
    job = submit(api, tenant)
    first = read_events(api, tenant, job["id"], limit=3)  # cut the stream after three events
    assert len(first) == 3
    rest = read_events(api, tenant, job["id"], last_id=first[-1][0])  # resumes, runs until the job ends
    everything = read_events(api, tenant, job["id"])
    ids = [e[0] for e in first + rest]
    assert ids == [e[0] for e in everything], "resumed stream = one uninterrupted stream"
    assert len(ids) == len(set(ids))
    types = [e[1] for e in everything]
    assert types[-1] == "job.succeeded"
    assert "job.started" in types and "job.stage" in types and "job.message" in types
    assert "job.still_working" in types, "heartbeats alone turn into a 'still working' event"
    assert everything[-1][2]["data"]["id"] == job["id"]
    assert all(e[2]["timestamp"].endswith("Z") for e in everything), "the same UTC form as the webhooks"
    stack.wait_job(api, tenant, job["id"])


def test_timeline(api, tenant, sim):
    job = submit(api, tenant)
    stack.wait_job(api, tenant, job["id"])
    resp = api.get(f"/v1/jobs/{job['id']}/timeline", headers=tenant.headers)
    assert resp.status_code == 200
    body = resp.json()
    assert body["summary"].startswith("Timeline (")
    assert body["tracks"] and {"type", "segments"} <= set(body["tracks"][0])
    live = api.get(f"/v1/jobs/{job['id']}/timeline", params={"refresh": "true"}, headers=tenant.headers).json()
    assert live["summary"] == body["summary"]
