"""Every documented variant on its own knob: heartbeats, expired tokens, lost sessions, empty drafts, error text,
a JSON envelope instead of a stream, Retry-After forms, 5xx; and that every entry of ``VARIANTS`` applies."""

from __future__ import annotations

import email.utils
import time

import httpx
import pytest

from tests.sim.upstream import Upstream, message_body, parse_sse
from tests.utils.sim_admin import VARIANTS, SimAdmin

CREDITS = "/api/credits/balance/simple"
DRAFT = {"t": [{"tt": 0, "n": "Video", "sg": [{"s": 0, "d": 5000, "n": "c"}]}], "d": 5000}
HEARTBEAT_FRAMES = {
    "comment": ("comment", "ping"),
    "empty_data": ("data", ""),
    "typed": ("data", '{"type":"heartbeat"}'),
}


@pytest.mark.parametrize("form", ["comment", "empty_data", "typed"])
def test_one_heartbeat_form(sim: SimAdmin, up: Upstream, sid: str, form: str) -> None:
    sim.configure(heartbeat_form=form, heartbeat_every_s=1.0, silent_share=1.0)
    frames = up.message(sid, "work for a while")
    assert {(f.kind, f.value) for f in frames} & set(HEARTBEAT_FRAMES.values()) == {HEARTBEAT_FRAMES[form]}
    assert sum((f.kind, f.value) == HEARTBEAT_FRAMES[form] for f in frames) >= 10


@pytest.mark.parametrize(
    ("form", "status", "code"),
    [("code_1001", 200, 1001), ("code_1010", 200, 1010), ("code_1011", 200, 1011), ("http_401", 401, 401)],
)
def test_expired_token_forms(sim: SimAdmin, up: Upstream, sid: str, form: str, status: int, code: int) -> None:
    sim.configure(expired_token_form=form)
    sim.fault("state", "token_expired")  # the fault answers in the configured form...
    resp = up.state(sid)
    assert (resp.status_code, resp.json()["code"]) == (status, code) and resp.json()["message"]
    sim.expire_tokens()  # ...and so does a token that really expired, on every family
    for resp in (up.credits_reply(), up.send(sid, "hi"), up.render_status("render_x")):
        assert (resp.status_code, resp.json()["code"]) == (status, code)
    assert sim.session(sid)["messages"] == []


def _session_calls(up: Upstream, sid: str) -> dict[str, httpx.Response]:
    return {
        "state": up.state(sid),
        "upload": up.upload_urls(sid, ["https://x.invalid/a.mp4"]),
        "run_sse": up.send(sid, "hi"),
        "render_submit": up.submit("render_l", sid, DRAFT),
    }


def test_lost_session_default_form(sim: SimAdmin, up: Upstream, sid: str) -> None:
    sim.lose_session(sid)
    replies = _session_calls(up, sid)
    assert (replies["run_sse"].status_code, replies["run_sse"].json()) == (404, {"detail": "Session not found"})
    for name in ("state", "upload"):
        assert (replies[name].status_code, replies[name].json()["code"]) == (200, 1002)
    assert replies["render_submit"].json() == {"success": False, "code": 1002, "message": "session not found"}
    assert sim.session(sid)["lost"] is True and sim.session(sid)["messages"] == []


def test_lost_session_as_1002_everywhere(sim: SimAdmin, up: Upstream, sid: str) -> None:
    sim.configure(lost_session_form="code_1002")
    sim.lose_session(sid)
    for name, resp in _session_calls(up, sid).items():
        assert resp.status_code == 200 and resp.headers["content-type"].startswith("application/json"), name
        assert resp.json()["code"] == 1002, name


def test_lost_session_as_404_everywhere(sim: SimAdmin, up: Upstream, sid: str) -> None:
    sim.configure(lost_session_form="http_404")
    sim.lose_session(sid)
    for name, resp in _session_calls(up, sid).items():
        assert (resp.status_code, resp.json()) == (404, {"detail": "Session not found"}), name


def test_session_lost_fault_uses_the_form_and_keeps_the_session(sim: SimAdmin, up: Upstream, sid: str) -> None:
    sim.configure(lost_session_form="http_404")
    sim.fault("state", "session_lost")
    assert up.state(sid).status_code == 404
    assert up.state(sid).status_code == 200  # a one-off reply: the session is still there


EMPTY_TRACKS = {"t": [{"tt": 0, "n": "Video", "sg": []}, {"tt": 1, "n": "BGM", "sg": []}], "d": 0}


@pytest.mark.parametrize(
    ("form", "draft"),
    [("null", None), ("empty_object", {}), ("no_tracks", {"t": []}), ("empty_tracks", EMPTY_TRACKS)],
)
def test_empty_draft_forms(sim: SimAdmin, up: Upstream, sid: str, form: str, draft: object) -> None:
    sim.configure(empty_draft_form=form, silent_share=1.0)
    assert up.draft(sid) == draft
    up.message(sid, "make a video")
    assert up.draft(sid)["t"][0]["sg"]  # an edit replaces the empty form with a real draft


@pytest.mark.parametrize(("field", "keys"), [("message", {"message"}), ("msg", {"msg"}), ("both", {"message", "msg"})])
def test_error_text_field(sim: SimAdmin, up: Upstream, field: str, keys: set[str]) -> None:
    sim.configure(error_field=field)
    sim.fault("credits", "code_2001")
    body = up.http.get(CREDITS, headers=up.headers()).json()
    assert set(body) == {"code"} | keys and body["code"] == 2001
    sim.fault("render_status", "http_500")
    assert set(up.render_status("r").json()) == {"success", "code"} | keys


def test_json_envelope_instead_of_a_stream(sim: SimAdmin, up: Upstream, sid: str) -> None:
    sim.fault("run_sse", "json_error")
    resp = up.send(sid, "hi")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("application/json")
    assert resp.json() == {"code": 500, "message": "the agent is temporarily unavailable, retry later"}
    sim.fault("run_sse", "json_error", code=1002)
    assert up.send(sid, "hi").json()["code"] == 1002
    assert sim.session(sid)["messages"] == [] and up.credits()["frozen"] == 0  # no run started
    assert sim.summary()["messages_sent"] == 0
    assert sim.http.post("/_sim/faults", json={"endpoint": "state", "kind": "json_error"}).status_code == 422


def test_retry_after_forms(sim: SimAdmin, up: Upstream, sid: str) -> None:
    sim.fault("run_sse", "http_429", retry_after=7)
    assert up.send(sid, "hi").headers["retry-after"] == "7"
    sim.fault("run_sse", "http_429", retry_after=7, retry_after_form="http_date")
    when = email.utils.parsedate_to_datetime(up.send(sid, "hi").headers["retry-after"]).timestamp()
    assert 5 <= when - time.time() <= 9
    sim.fault("run_sse", "http_429", retry_after_form="absent")
    resp = up.send(sid, "hi")
    assert resp.status_code == 429 and "retry-after" not in resp.headers
    sim.configure(retry_after_form="http_date")  # the config's form is every 429's default
    sim.fault("credits", "http_429")
    assert email.utils.parsedate_to_datetime(up.credits_reply().headers["retry-after"])
    assert sim.session(sid)["messages"] == []


def test_http_5xx_rotates(sim: SimAdmin, up: Upstream) -> None:
    sim.fault("credits", "http_5xx", times=3)
    assert [up.credits_reply().status_code for _ in range(4)] == [500, 502, 503, 200]


def test_stream_heartbeat_rotation_is_the_default(sim: SimAdmin, up: Upstream, sid: str) -> None:
    sim.configure(heartbeat_every_s=1.0)
    body = message_body(sid, "x")
    frames = parse_sse(up.http.post("/run_sse", headers=up.headers(), json=body).text)
    kinds = {(f.kind, f.value) for f in frames} & set(HEARTBEAT_FRAMES.values())
    assert kinds == set(HEARTBEAT_FRAMES.values())


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_every_variant_applies(sim: SimAdmin, up: Upstream, name: str) -> None:
    sim.apply_variant(name)
    variant = VARIANTS[name]
    config = sim.config()
    assert all(config[k] == v for k, v in variant["config"].items())
    assert len(sim.faults()) >= len(variant["faults"]) + (1 if "chaos" in variant else 0)
