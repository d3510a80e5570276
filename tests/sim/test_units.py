"""Direct tests of the simulator's pure parts: run plan, render clock, drafts, faults, config, state."""

from __future__ import annotations

import random

import pytest

from services.nemo_sim.agent import plan
from services.nemo_sim.config import SimConfig
from services.nemo_sim.drafts import apply_message, export_ready, wanted_title
from services.nemo_sim.faults import FaultBook, FaultSpec
from services.nemo_sim.records import Render, Session
from services.nemo_sim.render_clock import status_of
from services.nemo_sim.state import RateLimited, SimState


def test_plan_edits_at_first_tool_call_and_ends_on_time() -> None:
    steps = plan(20.0, 5.0, silent=False, temporary_issue=True, error=False)
    names = [s for _, s in steps]
    assert names.index("call_edit") < names.index("edit") < names.index("result_edit") < names.index("reply")
    assert dict((s, t) for t, s in steps)["edit"] == pytest.approx(2.0)  # 10% in
    assert names.count("heartbeat") == 3 and steps[-1] == (20.0, "end")
    assert names[-2] == "temporary_issue"
    assert [t for t, _ in steps] == sorted(t for t, _ in steps)


def test_plan_edit_lands_where_configured() -> None:
    steps = plan(10.0, 1.0, silent=False, temporary_issue=False, error=True, edit_at=0.7)
    at = {s: t for t, s in steps}
    assert at["edit"] == pytest.approx(7.0) and at["result_edit"] < at["call_save"]
    assert [t for t, _ in steps] == sorted(t for t, _ in steps)


def test_silent_plan_has_no_text_steps() -> None:
    names = [s for _, s in plan(10.0, 1.0, silent=True, temporary_issue=True, error=False)]
    assert not {"intro", "reply", "temporary_issue"} & set(names) and "edit" in names


def test_render_clock() -> None:
    render = Render("r", "s", "u", {}, 1, created_at=1000.0, duration_s=10.0, fails=False)
    assert (status_of(render, 1000.5).status, status_of(render, 1000.5).progress) == ("pending", 5)
    middle = status_of(render, 1005.0)
    assert middle.status == "processing" and 5 < middle.progress < 100
    done = status_of(render, 1010.0)
    assert (done.status, done.progress, done.finished_at) == ("completed", 100, 1010.0)
    render.fails = True
    assert status_of(render, 1020.0).status == "failed"
    render.canceled_at = 1005.0
    assert status_of(render, 2000.0).status == "canceled"


def test_drafts_always_change() -> None:
    session = Session("1234567890123456789", "task_1", "project", "en", "anon_1")
    rng = random.Random(1)
    previous = None
    for n in range(1, 30):
        apply_message(session, "trim" if n % 2 else "make it shorter, trim", rng)
        assert session.draft != previous and session.draft_version == n
        assert export_ready(session.draft)
        previous = session.draft


def test_wanted_title() -> None:
    assert wanted_title('call it "Urban Dreams"') == "Urban Dreams"
    assert wanted_title("change the title to Night Run") == "Night Run"
    assert wanted_title("a video about the sea") == "Sea"


def test_fault_book_counts_down_and_filters() -> None:
    book = FaultBook()
    book.add(FaultSpec(endpoint="state", kind="http_500", times=2, session_id="a"))
    book.add(FaultSpec(endpoint="run_sse", kind="drop"))
    assert book.take("state", "b") is None
    assert book.take("run_sse", "a") is None  # a stream fault waits for the stream
    assert [book.take("state", "a") is not None for _ in range(3)] == [True, True, False]
    assert book.take("run_sse", "a", stream=True).spec.kind == "drop"
    assert book.listing() == []


def test_config_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REELMILL_SIM_RENDER_SHAPE", "B")
    monkeypatch.setenv("REELMILL_SIM_TIME_SCALE", "0.5")
    config = SimConfig()
    assert (config.render_shape, config.scaled(60)) == ("B", 30.0)
    with pytest.raises(ValueError):
        config.patched({"unknown": 1})


def test_mint_limit_and_credit_moves() -> None:
    state = SimState(SimConfig(anon_per_client_limit=1, anonymous_credits=20, credits_per_message=10))
    try:
        _, user, _ = state.mint_anonymous("c", now=0.0)
        with pytest.raises(RateLimited) as refused:
            state.mint_anonymous("c", now=10.0)
        assert refused.value.retry_after == 3590
        state.mint_anonymous("c", now=3600.0)  # the window has moved on
        assert state.freeze(user, 15) and (user.available, user.frozen) == (5, 15)
        assert not state.freeze(user, 6) and (user.available, user.frozen) == (5, 15)
        state.spend(user, 15)
        assert (user.available, user.frozen) == (5, 0)
    finally:
        state.close()


def test_byte_range() -> None:
    from services.nemo_sim.outputs import UNSATISFIABLE, byte_range

    assert byte_range(None, 100) is None and byte_range("bytes=0-9,20-29", 100) is None
    assert byte_range("bytes=10-19", 100) == (10, 20) and byte_range("bytes=90-", 100) == (90, 100)
    assert byte_range("bytes=-5", 100) == (95, 100) and byte_range("bytes=50-500", 100) == (50, 100)
    assert byte_range("bytes=100-", 100) == UNSATISFIABLE and byte_range("bytes=-0", 100) == UNSATISFIABLE
    assert byte_range("bytes=9-3", 100) is None and byte_range("items=0-1", 100) is None


def test_token_bucket() -> None:
    from services.nemo_sim.capacity import Capacity, Refused

    capacity, config = Capacity(), SimConfig(rps_per_token=2.0, rps_burst=3.0)
    use = capacity.use("tok_a", "u")
    for _ in range(3):
        capacity.admit_call(use, config, now=100.0)
    with pytest.raises(Refused) as refused:
        capacity.admit_call(use, config, now=100.0)
    assert (refused.value.kind, refused.value.retry_after) == ("rate", 1)
    capacity.admit_call(use, config, now=100.5)  # one token back after 0.5 s at 2/s
    with pytest.raises(Refused):
        capacity.admit_call(use, config, now=100.6)
    assert capacity.refused_totals() == {"rate": 2, "streams": 0, "renders": 0}


def test_state_file_round_trip(tmp_path) -> None:
    from services.nemo_sim import persist

    config = SimConfig(state_file=str(tmp_path / "s.json"), time_scale=0.01)
    state = SimState(config)
    token, user, _ = state.mint_anonymous("c")
    session = state.new_session(user.user_id, "project", "en", "tok_x")
    apply_message(session, "make a video", state.rng)
    state.renders["r"] = Render("r", session.session_id, user.user_id, session.draft, 1, 1.0, 0.5, False)
    persist.save_now(state)
    assert oct((tmp_path / "s.json").stat().st_mode & 0o777) == "0o600"
    again = SimState(config)
    assert persist.load(again)
    assert again.tokens[token].user_id == user.user_id and again.users[user.user_id].available == 100
    assert again.sessions[session.session_id].draft == session.draft and again.renders["r"].draft_version == 1
    assert again.secret == state.secret and again.rng.random() == state.rng.random()
    assert again.capacity.use("tok_x", user.user_id).sessions_created == 1
