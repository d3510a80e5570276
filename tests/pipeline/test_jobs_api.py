"""The intake API on its own: validation, auth, idempotency, tenant isolation, listing. No job needs to run."""

from __future__ import annotations

import pytest

from tests.utils import stack

pytestmark = pytest.mark.usefixtures("api")


def post(api, tenant, body, **headers):
    return api.post("/v1/jobs", json=body, headers={**tenant.headers, **headers})


def test_missing_or_bad_key_is_401(api):
    assert api.get("/v1/jobs").status_code == 401
    resp = api.get("/v1/jobs", headers={"Authorization": "Bearer rm_live_nope"})
    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == "unauthorized"
    assert "rm_live_nope" not in resp.text


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({}, "prompt", "required"),
        ({"prompt": "   "}, "prompt", "blank"),
        ({"prompt": "x", "profile": "nope"}, "profile", "free-kling-ai-video-generation"),
        ({"prompt": "x", "output": {"format": "avi"}}, "output.format", "mp4"),
        ({"prompt": "x", "output": {"quality": "ultra"}}, "output.quality", "high"),
        ({"prompt": "x", "language": "english!"}, "language", "language tag"),
        ({"prompt": "x", "assets": ["not a url"]}, "assets[0]", "whitespace"),
        ({"prompt": "x", "assets": ["ftp://example.com/a.mp4"]}, "assets[0]", "scheme"),
        ({"prompt": "x", "assets": ["https://example.com/a.exe"]}, "assets[0]", "not accepted"),
        ({"prompt": "x", "webhook_events_filter": ["done"]}, "webhook_events_filter", "start"),
        ({"prompt": "x", "metadata": {"k": "v" * 5000}}, "metadata", "4096 bytes"),
        ({"prompt": "x", "colour": "red"}, "colour", "not a known field"),
        ({"prompt": "x", "prompt2": 1}, "prompt2", "not a known field"),
    ],
)
def test_bad_input_names_the_field(api, tenant, body, field, words):
    resp = post(api, tenant, body)
    assert resp.status_code == 422, resp.text
    err = resp.json()["error"]
    assert err["field"] == field
    assert words in err["message"]


def test_not_json_is_422(api, tenant):
    resp = api.post("/v1/jobs", content=b"{nope", headers={**tenant.headers, "Content-Type": "application/json"})
    assert resp.status_code == 422
    assert "not valid JSON" in resp.json()["error"]["message"]


def test_prefer_wait_over_limit_is_refused(api, tenant):
    resp = post(api, tenant, {"prompt": "x"}, Prefer="wait=61")
    assert resp.status_code == 422
    assert resp.json()["error"]["field"] == "Prefer"


def test_created_job_object(api, tenant):
    resp = post(api, tenant, {"prompt": "a fox at dusk", "metadata": {"row": 7}})
    assert resp.status_code == 201, resp.text
    job = resp.json()
    assert job["id"].startswith("job_")
    assert job["status"] == "queued"
    assert job["profile"] == "ai-video-generator-free-kapwing"
    assert job["metadata"] == {"row": 7}
    assert job["urls"]["get"].endswith(f"/v1/jobs/{job['id']}")
    assert job["urls"]["cancel"].endswith("/cancel")
    assert resp.headers["Location"] == job["urls"]["get"]
    for key in (
        "stage",
        "progress",
        "output",
        "messages",
        "timeline",
        "error",
        "created_at",
        "started_at",
        "completed_at",
        "batch_id",
    ):
        assert key in job


def test_idempotency_key(api, tenant):
    body = {"prompt": "same body"}
    first = post(api, tenant, body, **{"Idempotency-Key": "k-1"})
    again = post(api, tenant, body, **{"Idempotency-Key": "k-1"})
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    assert again.headers.get("Idempotent-Replayed") == "true"
    other = post(api, tenant, {"prompt": "another body"}, **{"Idempotency-Key": "k-1"})
    assert other.status_code == 409
    assert other.json()["error"]["field"] == "Idempotency-Key"
    # the key is per tenant: another tenant may use the same one
    someone = stack.new_tenant()
    theirs = post(api, someone, {"prompt": "another body"}, **{"Idempotency-Key": "k-1"})
    assert theirs.status_code == 201
    assert theirs.json()["id"] != first.json()["id"]


def test_tenants_never_see_each_other(api, tenant):
    job = post(api, tenant, {"prompt": "private"}).json()
    intruder = stack.new_tenant()
    assert api.get(f"/v1/jobs/{job['id']}", headers=intruder.headers).status_code == 404
    assert api.post(f"/v1/jobs/{job['id']}/cancel", headers=intruder.headers).status_code == 404
    listed = api.get("/v1/jobs", headers=intruder.headers).json()
    assert all(j["id"] != job["id"] for j in listed["data"])


def test_list_filters_and_cursor(api, tenant):
    ids = [post(api, tenant, {"prompt": f"job {i}"}).json()["id"] for i in range(5)]
    page1 = api.get("/v1/jobs", params={"limit": 2}, headers=tenant.headers).json()
    assert [j["id"] for j in page1["data"]] == ids[::-1][:2]
    assert page1["has_more"] is True
    page2 = api.get("/v1/jobs", params={"limit": 2, "cursor": page1["next_cursor"]}, headers=tenant.headers).json()
    assert [j["id"] for j in page2["data"]] == ids[::-1][2:4]
    bad = api.get("/v1/jobs", params={"status": "sleeping"}, headers=tenant.headers)
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "status"
    bad_cursor = api.get("/v1/jobs", params={"cursor": "zzz"}, headers=tenant.headers)
    assert bad_cursor.status_code == 422
    future = api.get("/v1/jobs", params={"created_after": "2999-01-01T00:00:00Z"}, headers=tenant.headers).json()
    assert future["data"] == []


def test_cancel_a_queued_job(api, tenant):
    job = post(api, tenant, {"prompt": "never mind"}).json()
    resp = api.post(f"/v1/jobs/{job['id']}/cancel", headers=tenant.headers)
    assert resp.status_code == 200, "canceled at once, or by its worker within the reply's wait"
    assert resp.json()["status"] == "canceled"
    assert resp.json()["error"]["code"] == "canceled"
    # canceling again is harmless
    assert api.post(f"/v1/jobs/{job['id']}/cancel", headers=tenant.headers).json()["status"] == "canceled"


def test_health(api):
    assert api.get("/healthz").json() == {"status": "ok"}
    ready = api.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"database": "ok", "redis": "ok"}
