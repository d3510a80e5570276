"""Connections reset before the first byte (the request not acted on, or acted on), and the agent run going on
server-side whichever way the client loses its stream: a resend after any of them is a real duplicate."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from tests.sim.upstream import Upstream, message_body
from tests.utils.sim_admin import SimAdmin
from tests.utils.waiting import wait_until

DRAFT = {"t": [{"tt": 0, "n": "Video", "sg": [{"s": 0, "d": 5000, "n": "c"}]}], "d": 5000}


def _no_status_line(call: Callable[[], object]) -> None:
    """The call raises a transport error: no reply, not even a status line, reached the client."""
    with pytest.raises(httpx.TransportError):
        call()


def _settled(sim: SimAdmin, sid: str) -> dict:
    wait_until(lambda: sim.session(sid)["runs_in_progress"] == 0)
    return sim.session(sid)


def test_reset_before_first_byte_does_nothing(sim: SimAdmin, up: Upstream, sid: str) -> None:
    sim.fault("run_sse", "reset")
    _no_status_line(lambda: up.send(sid, "make a video"))
    assert sim.session(sid)["messages"] == [] and up.credits() == {"available": 100, "frozen": 0, "total": 100}
    (entry,) = [r for r in sim.requests(10) if r["endpoint"] == "run_sse"]
    assert (entry["status"], entry["reset"], entry["fault"]) == (None, "before", "reset")
    assert sim.endpoint_count("run_sse") == 1 and sim.summary()["messages_sent"] == 0
    assert up.send(sid, "make a video").status_code == 200  # fired once; the client may simply resend


def test_reset_after_accept_runs_the_message(sim: SimAdmin, up: Upstream, sid: str) -> None:
    sim.configure(silent_share=1.0, message_seconds=30.0)
    sim.fault("run_sse", "reset_after_accept")
    _no_status_line(lambda: up.send(sid, "make a video"))
    assert sim.session(sid)["messages"] == ["make a video"]  # accepted: the run started
    wait_until(lambda: sim.counters()["in_flight_streams"] == 0)  # the reply is gone, the run is not
    assert sim.session(sid)["runs_in_progress"] == 1
    session = _settled(sim, sid)
    assert (session["draft_version"], session["edits"]) == (1, 1)
    assert up.credits() == {"available": 90, "frozen": 0, "total": 90}
    up.message(sid, "make a video")  # a resend after the reset is a second edit and a second charge
    assert sim.activity(sid)["duplicate_messages"] == {"make a video": 2}
    assert sim.summary()["duplicate_messages"] == 1 and up.credits()["available"] == 80


def test_resets_on_other_endpoints(sim: SimAdmin, up: Upstream, sid: str) -> None:
    sim.fault("session", "reset")
    _no_status_line(up.new_session)
    sim.fault("session", "reset_after_accept")
    _no_status_line(up.new_session)
    assert sim.summary()["sessions"] == 2  # the fixture's, and the one made before its reply was lost
    sim.fault("render_submit", "reset")
    _no_status_line(lambda: up.submit("render_a", sid, DRAFT))
    assert up.render_status("render_a").status_code == 404
    sim.fault("render_submit", "reset_after_accept")
    _no_status_line(lambda: up.submit("render_b", sid, DRAFT))
    assert up.render_status("render_b").status_code == 200
    assert up.submit("render_b", sid, DRAFT).status_code == 409  # the id is taken: look it up, do not resubmit
    sim.fault("render_status", "reset")
    _no_status_line(lambda: up.render_status("render_b"))
    sim.fault("upload", "reset")
    _no_status_line(lambda: up.upload(sid, [("a.mp4", b"x" * 2_000_000)]))
    assert sim.session(sid)["files"] == []


def test_edit_lands_after_a_mid_stream_drop(sim: SimAdmin, up: Upstream, sid: str) -> None:
    sim.configure(silent_share=1.0, message_seconds=30.0, heartbeat_every_s=1.0)
    sim.fault("run_sse", "drop", after_events=1)
    with pytest.raises(httpx.RemoteProtocolError):
        up.send(sid, "add music")
    assert _settled(sim, sid)["draft_version"] == 1 and up.credits()["frozen"] == 0


def test_edit_lands_after_a_stream_error(sim: SimAdmin, up: Upstream, sid: str) -> None:
    sim.configure(silent_share=1.0, message_seconds=60.0)
    sim.fault("run_sse", "stream_error")
    up.message(sid, "add a title")  # ends early on the error event
    assert sim.session(sid)["runs_in_progress"] == 1
    assert _settled(sim, sid)["draft_version"] == 1 and up.credits() == {"available": 90, "frozen": 0, "total": 90}


def test_edit_lands_when_the_client_gives_up_before_any_byte(sim: SimAdmin, up: Upstream, sid: str) -> None:
    sim.configure(silent_share=1.0, message_seconds=100.0, heartbeat_every_s=50.0)  # first byte after 0.1 s
    quick = httpx.Client(base_url=sim.base_url, timeout=httpx.Timeout(5.0, read=0.02))
    with pytest.raises(httpx.ReadTimeout):
        quick.post("/run_sse", headers=up.headers(), json=message_body(sid, "trim it"))
    quick.close()
    assert sim.session(sid)["messages"] == ["trim it"]
    assert _settled(sim, sid)["draft_version"] == 1


def test_refusals_never_start_a_run(sim: SimAdmin, up: Upstream, sid: str) -> None:
    for kind in ("http_429", "http_500", "http_502", "http_503", "json_error", "token_expired", "session_lost"):
        sim.fault("run_sse", kind)
        assert up.send(sid, "go").status_code in (200, 401, 404, 429, 500, 502, 503), kind
    assert sim.session(sid)["messages"] == [] and sim.counters()["runs_in_progress"] == 0
    assert sim.summary()["faults_fired"] == 7 and up.credits()["frozen"] == 0
