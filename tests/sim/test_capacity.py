"""The capacity model per token: K concurrent streams (agent runs), K' concurrent renders, R calls per second;
HTTP 429 with Retry-After beyond them, nothing done; current and peak use and refusals in the counters."""

from __future__ import annotations

from contextlib import ExitStack

from tests.sim.upstream import Upstream, message_body
from tests.utils.sim_admin import SimAdmin
from tests.utils.waiting import wait_until

DRAFT = {"t": [{"tt": 0, "n": "Video", "sg": [{"s": 0, "d": 5000, "n": "c"}]}], "d": 5000}


def _open_streams(stack: ExitStack, up: Upstream, sids: list[str]) -> None:
    for n, sid in enumerate(sids):
        resp = stack.enter_context(
            up.http.stream("POST", "/run_sse", headers=up.headers(), json=message_body(sid, f"m{n}"))
        )
        assert resp.status_code == 200


def test_stream_limit(sim: SimAdmin, up: Upstream) -> None:
    sim.configure(max_streams_per_token=2, message_seconds=150.0, silent_share=1.0)  # 1.5 s runs
    sids = [up.new_session() for _ in range(3)]
    with ExitStack() as stack:
        _open_streams(stack, up, sids[:2])
        refused = up.send(sids[2], "one too many")
        assert refused.status_code == 429 and refused.json()["code"] == 429 and refused.json()["message"]
        assert 1 <= int(refused.headers["retry-after"]) <= 2
        assert sim.session(sids[2])["messages"] == [] and up.credits()["frozen"] == 20  # nothing acted on
        other = Upstream(sim.base_url)
        other.mint("another-client")
        assert other.send(other.new_session(), "mine").status_code == 200  # limits are per token
    use = sim.token_use(up.token)
    assert use["streams"]["peak"] == 2 and use["capacity_429"] == {"rate": 0, "streams": 1, "renders": 0}
    assert use["open_streams"]["current"] == 0


def test_a_stream_slot_is_held_until_the_run_ends(sim: SimAdmin, up: Upstream) -> None:
    sim.configure(max_streams_per_token=1, message_seconds=100.0, silent_share=1.0)  # 1 s runs
    first, second = up.new_session(), up.new_session()
    with up.http.stream("POST", "/run_sse", headers=up.headers(), json=message_body(first, "go")) as resp:
        assert resp.status_code == 200
    # the client left; the agent still works, so the slot is still taken
    assert sim.token_use(up.token)["streams"]["current"] == 1
    assert up.send(second, "next").status_code == 429
    wait_until(lambda: sim.session(first)["runs_in_progress"] == 0, timeout=10)
    assert sim.token_use(up.token)["streams"]["current"] == 0
    assert up.send(second, "next").status_code == 200


def test_a_stream_slot_may_end_with_the_connection(sim: SimAdmin, up: Upstream) -> None:
    sim.configure(max_streams_per_token=1, message_seconds=1000.0, silent_share=1.0, stream_slot_until="disconnect")
    first, second = up.new_session(), up.new_session()
    with up.http.stream("POST", "/run_sse", headers=up.headers(), json=message_body(first, "go")) as resp:
        assert resp.status_code == 200
        assert up.send(second, "next").status_code == 429
    wait_until(lambda: sim.token_use(up.token)["open_streams"]["current"] == 0)
    with up.http.stream("POST", "/run_sse", headers=up.headers(), json=message_body(second, "next")) as resp:
        assert resp.status_code == 200  # the first run still works server-side; its connection is gone
    assert sim.token_use(up.token)["streams"]["peak"] == 2


def test_render_limit(sim: SimAdmin, up: Upstream, sid: str) -> None:
    sim.configure(max_renders_per_token=1, render_seconds=1000.0)  # 10 s renders
    assert up.submit("render_1", sid, DRAFT).json()["success"] is True
    refused = up.submit("render_2", sid, DRAFT)
    assert refused.status_code == 429 and refused.json()["success"] is False and refused.json()["code"] == 429
    assert int(refused.headers["retry-after"]) >= 9
    assert up.render_status("render_2").status_code == 404  # not created
    assert up.http.post("/api/render/proxy/lambda/render_1/cancel", headers=up.headers()).status_code == 200
    assert up.submit("render_2", sid, DRAFT).json()["success"] is True  # a cancel frees the slot
    use = sim.token_use(up.token)
    assert use["renders"] == {"current": 1, "peak": 1} and use["capacity_429"]["renders"] == 1


def test_render_slot_frees_on_completion(sim: SimAdmin, up: Upstream, sid: str) -> None:
    sim.configure(max_renders_per_token=1, render_seconds=30.0)  # 0.3 s
    up.submit("render_a", sid, DRAFT)
    assert up.submit("render_b", sid, DRAFT).status_code == 429
    wait_until(lambda: sim.render("render_a")["status"] == "completed")
    assert up.submit("render_b", sid, DRAFT).status_code == 200


def test_calls_per_second(sim: SimAdmin, up: Upstream, sid: str) -> None:
    sim.configure(rps_per_token=2.0, rps_burst=4.0)
    statuses = [up.credits_reply().status_code for _ in range(6)]
    assert statuses[:4] == [200] * 4 and 429 in statuses[4:]
    limited = up.send(sid, "hi")
    assert limited.status_code == 429 and limited.headers["retry-after"] == "1"
    assert sim.session(sid)["messages"] == []
    wait_until(lambda: up.credits_reply().status_code == 200, timeout=3, every=0.2)
    assert sim.token_use(up.token)["capacity_429"]["rate"] >= 2


def test_peaks_are_tracked_without_limits(sim: SimAdmin, up: Upstream) -> None:
    sim.configure(message_seconds=100.0, silent_share=1.0, render_seconds=1000.0)
    sids = [up.new_session() for _ in range(3)]
    with ExitStack() as stack:
        _open_streams(stack, up, sids)
        assert sim.token_use(up.token)["open_streams"]["current"] == 3
    for n in range(2):
        up.submit(f"render_{n}", sids[0], DRAFT)
    use = sim.token_use(up.token)
    assert use["streams"]["peak"] == 3 and use["open_streams"]["peak"] == 3 and use["renders"]["peak"] == 2
    assert use["capacity_429"] == {"rate": 0, "streams": 0, "renders": 0}
