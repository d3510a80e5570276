"""Injected faults: every kind, how many times, which session, and that faulted requests are counted."""

from __future__ import annotations

import httpx
import pytest

from tests.sim.upstream import Upstream, events, message_body, parse_sse, texts
from tests.utils.sim_admin import SimAdmin
from tests.utils.waiting import wait_until

CREDITS = "/api/credits/balance/simple"

REPLACING = [
    ("http_429", 429, 429),
    ("http_500", 500, 500),
    ("http_503", 503, 503),
    ("http_401", 401, 1011),
    ("code_1001", 200, 1001),
    ("code_1002", 200, 1002),
    ("code_2001", 200, 2001),
    ("code_4001", 200, 4001),
    ("code_4002", 200, 4002),
    ("http_402", 402, 402),
]


@pytest.mark.parametrize(("kind", "status", "code"), REPLACING)
def test_replacing_kinds(sim: SimAdmin, up: Upstream, kind: str, status: int, code: int) -> None:
    sim.fault("credits", kind)
    resp = up.http.get(CREDITS, headers=up.headers())
    assert resp.status_code == status
    assert resp.json()["code"] == code and resp.json()["message"]
    assert up.http.get(CREDITS, headers=up.headers()).json()["code"] == 0  # fired once, then gone
    assert sim.endpoint_count("credits") == 2  # the faulted request was counted too


def test_429_carries_retry_after(sim: SimAdmin, up: Upstream) -> None:
    sim.fault("anonymous_token", "http_429", retry_after=7)
    resp = httpx.post(f"{sim.base_url}/api/auth/anonymous-token", headers={"X-Client-Id": "c"})
    assert resp.status_code == 429 and resp.headers["Retry-After"] == "7"
    sim.fault("credits", "http_429")
    assert up.http.get(CREDITS, headers=up.headers()).headers["Retry-After"] == "30"


def test_502_is_a_gateways_html(sim: SimAdmin, up: Upstream) -> None:
    sim.fault("credits", "http_502")
    resp = up.http.get(CREDITS, headers=up.headers())
    assert resp.status_code == 502 and resp.headers["content-type"].startswith("text/html")
    assert "502 Bad Gateway" in resp.text


def test_render_family_faults_use_its_envelope(sim: SimAdmin, up: Upstream) -> None:
    sim.fault("render_status", "http_503")
    resp = up.render_status("render_any")
    assert resp.status_code == 503
    assert resp.json() == {"success": False, "code": 503, "message": "service unavailable"}


def test_run_sse_1002_is_adk_404(sim: SimAdmin, up: Upstream, sid: str) -> None:
    sim.fault("run_sse", "code_1002")
    resp = up.send(sid, "hi")
    assert (resp.status_code, resp.json()) == (404, {"detail": "Session not found"})


def test_times_and_session_filter(sim: SimAdmin, up: Upstream, sid: str) -> None:
    other = up.new_session()
    sim.fault("state", "http_500", times=2, session_id=sid)
    assert up.state(other).status_code == 200
    assert [up.state(sid).status_code for _ in range(3)] == [500, 500, 200]
    assert sim.session_count(sid, "state") == 3 and sim.session_count(other, "state") == 1


def test_clear_faults(sim: SimAdmin, up: Upstream) -> None:
    sim.fault("credits", "http_500", times=5)
    sim.clear_faults()
    assert up.http.get(CREDITS, headers=up.headers()).status_code == 200


def test_bad_fault_specs_are_422(sim: SimAdmin) -> None:
    for spec in (
        {"endpoint": "nope", "kind": "http_500"},
        {"endpoint": "credits", "kind": "explode"},
        {"endpoint": "credits", "kind": "stream_error"},
        {"endpoint": "credits", "kind": "http_500", "colour": "red"},
    ):
        assert sim.http.post("/_sim/faults", json=spec).status_code == 422


def test_drop_loses_the_reply_not_the_work(sim: SimAdmin, up: Upstream, sid: str) -> None:
    state = up.state(sid).json()["data"]["state"]
    sim.configure(silent_share=1.0)
    up.message(sid, "build it")
    draft = up.draft(sid)
    assert state["draft"] is None and draft
    sim.fault("render_submit", "drop")
    with pytest.raises(httpx.TransportError):
        up.submit("render_lost", sid, draft)
    retry = up.submit("render_lost", sid, draft)  # the first submit landed: its id is taken
    assert retry.status_code == 409
    assert up.render_status("render_lost").status_code == 200
    logged = [r for r in sim.requests(10) if r["endpoint"] == "render_submit"]
    assert logged[0].get("dropped") is True and "dropped" not in logged[1]


def _read_until_cut(up: Upstream, sid: str) -> tuple[list[str], Exception | None]:
    lines: list[str] = []
    try:
        with up.http.stream("POST", "/run_sse", headers=up.headers(), json=message_body(sid, "go")) as resp:
            for line in resp.iter_lines():
                lines.append(line)
    except httpx.TransportError as exc:
        return lines, exc
    return lines, None


def test_stream_drop_after_events(sim: SimAdmin, up: Upstream, sid: str) -> None:
    sim.fault("run_sse", "drop", after_events=3)
    lines, error = _read_until_cut(up, sid)
    assert isinstance(error, httpx.RemoteProtocolError)  # not a clean end
    assert len(parse_sse("\n".join(lines) + "\n\n")) == 3
    wait_until(lambda: sim.session(sid)["runs_in_progress"] == 0)
    assert sim.session(sid)["draft_version"] == 1  # the run finished server-side
    assert up.credits() == {"available": 90, "frozen": 0, "total": 90}
    lines, error = _read_until_cut(up, sid)
    assert error is None  # the fault fired once


def test_stream_drop_default_is_two_events(sim: SimAdmin, up: Upstream, sid: str) -> None:
    sim.fault("run_sse", "drop")
    lines, error = _read_until_cut(up, sid)
    assert error is not None and len(parse_sse("\n".join(lines) + "\n\n")) == 2


def test_stream_errors_cycle_through_three_forms(sim: SimAdmin, up: Upstream, sid: str) -> None:
    sim.fault("run_sse", "stream_error", times=3)
    found = []
    for _ in range(3):
        evs = events(up.message(sid, "go"))
        last = evs[-1]
        found.append(last)
        assert not any(ev.get("finishReason") for ev in evs)  # the stream ended early, on the error
    system, bare, coded = found
    assert system["author"] == "system" and texts([system])[0].startswith("Error: ")
    assert set(bare) == {"error"} and bare["error"]
    assert coded["errorCode"] and coded["errorMessage"] and "content" not in coded


def test_a_stream_error_in_the_form_asked_for(sim: SimAdmin, up: Upstream, sid: str) -> None:
    sim.fault("run_sse", "stream_error", error_form=2)
    coded = events(up.message(sid, "go"))[-1]
    assert coded["errorCode"] and coded["errorMessage"] and "content" not in coded
    sim.fault("run_sse", "stream_error", error_form=1)
    assert set(events(up.message(sid, "again"))[-1]) == {"error"}
