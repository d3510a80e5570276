"""Anonymous tokens, bearer auth, expiry, registered tokens."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from tests.sim.upstream import Upstream
from tests.utils.sim_admin import SimAdmin


def test_anonymous_token_shape(sim: SimAdmin) -> None:
    resp = httpx.post(f"{sim.base_url}/api/auth/anonymous-token", headers={"X-Client-Id": "c-1"})
    assert resp.status_code == 200
    body = resp.json()
    assert body["code"] == 0
    data = body["data"]
    assert data["token"].startswith("nmv_usr_") and len(data["token"]) > 20
    assert data["user_id"].startswith("anon_")
    assert data["credits"] == 100
    expires = datetime.fromisoformat(data["expires_at"].replace("Z", "+00:00"))
    assert abs(expires - datetime.now(UTC) - timedelta(days=7)) < timedelta(minutes=1)


def test_client_id_required_and_bounded(sim: SimAdmin) -> None:
    url = f"{sim.base_url}/api/auth/anonymous-token"
    expected = {"code": 400, "message": "X-Client-Id header is required"}
    missing = httpx.post(url)
    assert (missing.status_code, missing.json()) == (400, expected)
    too_long = httpx.post(url, headers={"X-Client-Id": "x" * 65})
    assert (too_long.status_code, too_long.json()) == (400, expected)
    assert httpx.post(url, headers={"X-Client-Id": "x" * 64}).status_code == 200


def test_anonymous_mints_are_rate_limited_per_client(sim: SimAdmin) -> None:
    sim.configure(anon_per_client_limit=2, anonymous_credits=7)
    url = f"{sim.base_url}/api/auth/anonymous-token"
    for _ in range(2):
        assert httpx.post(url, headers={"X-Client-Id": "busy"}).json()["data"]["credits"] == 7
    refused = httpx.post(url, headers={"X-Client-Id": "busy"})
    assert refused.status_code == 429
    assert refused.json()["code"] == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 3600
    assert httpx.post(url, headers={"X-Client-Id": "other"}).status_code == 200


def test_unknown_and_malformed_tokens_get_401_1011(sim: SimAdmin) -> None:
    url = f"{sim.base_url}/api/credits/balance/simple"
    for headers in ({}, {"Authorization": "Bearer nmv_usr_nope"}, {"Authorization": "Basic abc"}):
        resp = httpx.get(url, headers=headers)
        assert resp.status_code == 401
        assert resp.json() == {"code": 1011, "message": "invalid token"}


def test_expired_token_gets_200_1001(sim: SimAdmin, up: Upstream, sid: str) -> None:
    assert up.credits()["available"] == 100
    sim.expire_tokens()
    balance = up.http.get("/api/credits/balance/simple", headers=up.headers())
    for resp in (up.state(sid), balance, up.send(sid, "x")):
        assert resp.status_code == 200
        assert resp.json() == {"code": 1001, "message": "token expired"}


def test_token_ttl_from_config(sim: SimAdmin) -> None:
    sim.configure(token_ttl_s=3600)
    caller = Upstream(sim.base_url)
    expires = datetime.fromisoformat(caller.mint()["expires_at"].replace("Z", "+00:00"))
    assert abs(expires - datetime.now(UTC) - timedelta(hours=1)) < timedelta(minutes=1)


def test_registered_token_is_a_usr_user(sim: SimAdmin) -> None:
    reply = sim.add_token("nmv_configured_token_123", credits=40)
    assert reply["user_id"].startswith("usr_") and reply["credits"] == 40
    assert "nmv_configured_token_123" not in str(reply)
    caller = Upstream(sim.base_url, token="nmv_configured_token_123")
    session = caller.http.post(
        "/api/tasks/me/with-session/nemo_agent", headers=caller.headers(), json={"task_name": "project"}
    ).json()["data"]
    assert session["user_id"] == reply["user_id"]
    assert caller.credits() == {"available": 40, "frozen": 0, "total": 40}


def test_msg_field_mirrors_message_when_configured(sim: SimAdmin) -> None:
    sim.configure(msg_field=True)
    resp = httpx.get(f"{sim.base_url}/api/credits/balance/simple", headers={"Authorization": "Bearer bad"})
    assert resp.json() == {"code": 1011, "message": "invalid token", "msg": "invalid token"}
