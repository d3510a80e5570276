"""The variant matrix: the whole flow in every documented upstream variant (tests/utils/sim_admin.py, VARIANTS).

Each variant runs two jobs, one per skill profile (one with an asset, one without), each followed by a revision
(a follow-up message on the finished job) with the variant's faults armed again. For each, the job ends as the
contract says (succeeded, or exactly the clear failure the contract names), the upstream calls per endpoint are
exactly what the variant implies (computed below, call by call), each fault fired once, and no session got a
message or a render twice.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field

import pytest

from tests.utils import proving as pv
from tests.utils.sim_admin import VARIANTS, SimAdmin
from tests.utils.stack import wait_job
from tests.utils.waiting import wait_until

pytestmark = pytest.mark.slow

KAPWING = "ai-video-generator-free-kapwing"
KLING = "free-kling-ai-video-generation"
ASSET = "https://cdn.example.com/clip.mp4"
CASES = {"kapwing-asset": (KAPWING, [ASSET]), "kling-plain": (KLING, [])}
# Variants that are not one scenario with exact figures: the chaos preset (faults at a rate) is the chaos
# benchmark's, bench/chaos.py, and tests/proving/test_chaos_small.py.
NOT_IN_MATRIX = {"chaos"}
MATRIX = [name for name in VARIANTS if name not in NOT_IN_MATRIX]


# ---- what each variant costs, call by call -------------------------------------------------------------------


@dataclass
class Expect:
    calls: Counter = field(default_factory=Counter)
    sessions: int = 0  # sessions the simulator created during the run (orphans included)
    error: str | None = None  # the job's error code, when the contract says it fails
    polls_logged: bool = False  # add one state read per look at the draft the worker logged (a send of unknown fate)

    def add(self, **calls: int) -> None:
        self.calls.update(calls)


def plain_job(assets: bool) -> Expect:
    """A job without faults: one session; the asset uploaded, then the draft read before the send (an upload may
    change it); one message; the draft read to verify; one render, done at its first poll."""
    e = Expect(sessions=1)
    e.add(session=1, run_sse=1, state=1, render_submit=1, render_status=1)
    if assets:
        e.add(upload=1, state=1)
    return e


def plain_revision() -> Expect:
    """A follow-up on the finished job: the session and the draft's fingerprint are known, so no read before the
    send; one message, one verify, one render, one poll."""
    e = Expect()
    e.add(run_sse=1, state=1, render_submit=1, render_status=1)
    return e


def refused_submit(e: Expect) -> None:
    """A render submit refused before anything was done: the retry looks its id up (404), then submits again."""
    e.add(render_submit=1, render_status=1)


def _faults(name: str) -> dict[str, str]:
    return {spec["endpoint"]: spec["kind"] for spec in VARIANTS[name]["faults"]}


def expect(name: str, assets: bool, revision: bool) -> Expect:
    e = plain_revision() if revision else plain_job(assets)
    faults = _faults(name)
    if "session" in faults and not revision:
        e.add(session=1)  # refused (5xx, reset) or accepted with its reply lost: a second session call
        if faults["session"] == "reset_after_accept":
            e.sessions += 1  # the first session was made; its id never reached reelmill
    kind = faults.get("run_sse")
    if kind in ("http_429", "http_502", "json_error"):
        e.add(run_sse=1)  # refused before its stream began: not sent, so sent again
    elif kind in ("drop", "stream_error", "reset_after_accept"):
        e.add(state=2)  # the edit ran: one look finds the draft changed, one more finds it still: landed
    elif kind == "reset":
        e.add(run_sse=1)  # nothing was done: after the looks, once the stream's cap has passed, sent again
        e.polls_logged = True
    elif kind == "session_lost":
        lost_session(e, assets, revision)
    elif kind == "token_expired":
        expired_token(e, assets, revision)
    if e.error:
        return e
    submit_kind = faults.get("render_submit")
    if submit_kind in ("http_429", "http_503", "reset"):
        refused_submit(e)
    elif submit_kind == "reset_after_accept":
        e.add(render_status=1)  # the retry looks its id up, finds the render: not submitted again
    if "render_status" in faults:
        e.add(render_status=1)  # one refused poll (a new token's poll is counted in expired_token)
    return e


def lost_session(e: Expect, assets: bool, revision: bool) -> None:
    e.add(session=1, run_sse=1)  # a new session; the message replayed into it
    e.sessions += 1
    if assets:
        e.add(upload=1, state=1)  # the upload replayed, then the draft read before the send
    if revision:  # the job's own turn replayed first (its timeline rebuilt), then the draft read before the revision
        e.add(run_sse=1, state=1)


def expired_token(e: Expect, assets: bool, revision: bool) -> None:
    """1001/1010/1011/401 on the message: a new anonymous token (a new upstream user) and the call again; that user
    does not know the session (404): a new session, the turns replayed. Then 1001 on the poll: one more token, the
    poll again, and that user does not know the render (404): it is submitted again, in a session that user does
    not know either (1002): one more new session, the turns replayed, the retried submit's id looked up (404) and
    submitted there."""
    e.add(anonymous_token=1, run_sse=1)
    lost_session(e, assets, revision)
    e.add(anonymous_token=1, render_status=1, render_submit=1)  # the poll again (404); the submit again (refused)
    lost_session(e, assets, revision)
    e.add(state=1, render_status=1, render_submit=1)  # verify in the third session; the id looked up; submitted


# ---- the run ---------------------------------------------------------------------------------------------------


def arm(sim: SimAdmin, name: str) -> None:
    sim.clear_faults()
    for spec in VARIANTS[name]["faults"]:
        sim.arm(spec)


def check_calls(sim: SimAdmin, before: Counter, e: Expect, job_id: str, services, looks_before: int = 0) -> None:
    calls = pv.calls_since(sim, before)
    wanted = Counter(e.calls)
    if e.polls_logged:
        wanted["state"] += pv.recover_looks([services["worker"].log], job_id) - looks_before
    trail = "\n".join(pv.call_trail(sim, sum(calls.values())))
    assert calls == dict(+wanted), f"upstream calls: {calls}, expected {dict(+wanted)}; the calls:\n{trail}"


def run_revision(api, tenant, sim: SimAdmin, services, name: str, job: dict, assets: bool) -> dict:
    sessions, before = sim.summary()["sessions"], pv.endpoint_calls(sim)
    looks = pv.recover_looks([services["worker"].log], job["id"])
    arm(sim, name)
    pv.follow_up(api, tenant, job["id"], "make the title bigger and add lo-fi music")
    done = pv.revision_ended(api, tenant, job["id"], 2, timeout=120)
    e = expect(name, assets, revision=True)
    assert done["status"] == "succeeded", done["error"]
    assert done["output"]["url"] != done["revisions"][0]["output"]["url"], "the revision rendered anew"
    check_calls(sim, before, e, job["id"], services, looks)
    # a revision opens a session only when the upstream lost the job's: the turns are replayed into the new one
    assert sim.summary()["sessions"] == sessions + e.sessions
    done["replayed"] = e.sessions > 0
    return done


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("name", MATRIX)
def test_variant(api, tenant, proving: SimAdmin, services, name: str, case: str) -> None:
    sim = proving
    profile, assets = CASES[case]
    before = pv.endpoint_calls(sim)
    sim.apply_variant(name)
    prompt = f"a fox running through a snowy forest at dusk ({uuid.uuid4().hex[:8]})"
    job = pv.submit(api, tenant, prompt=prompt, profile=profile, assets=assets)
    done = wait_job(api, tenant, job["id"], timeout=120)
    e = expect(name, bool(assets), revision=False)
    assert done["status"] == "succeeded", (done["stage"], done["error"])
    check_calls(sim, before, e, job["id"], services)
    fired = sim.summary()["faults_fired"]
    assert fired == len(VARIANTS[name]["faults"]), f"{fired} faults fired, {VARIANTS[name]['faults']}"
    assert sim.summary()["sessions"] == e.sessions
    check_variant_effects(sim, name, done, job["id"])

    revised = run_revision(api, tenant, sim, services, name, done, bool(assets))
    sid = pv.job_row(job["id"]).session_id
    assert sim.activity(sid)["messages_sent"] == 2, "each message reached the job's (last) session once"
    assert sim.activity(sid)["renders_submitted"] == (1 if revised["replayed"] else 2), "the replay renders nothing"
    sim.assert_no_duplicates()


def check_variant_effects(sim: SimAdmin, name: str, done: dict, job_id: str) -> None:
    """What a configured variant shows in the result, beyond success."""
    config = sim.config()
    if name == "silent_streams":
        assert done["messages"][-1].startswith("The edit was applied. Timeline ("), done["messages"]
    elif "run_sse" not in _faults(name):  # the agent's own texts are recorded (a stream cut short has none)
        assert any(not m.startswith("The edit was applied") for m in done["messages"]), done["messages"]
    if name.startswith("heartbeat_"):
        every = config["heartbeat_every_s"] * config["time_scale"]
        length = config["message_seconds"] * config["time_scale"]
        beats = sum(1 for k in range(1, int(length / every) + 1) if k * every < length)
        counted = pv.turn_row(job_id).heartbeats
        assert counted == beats, f"{counted} heartbeats counted, the stream sent {beats}"
    if name == "render_shape_b":  # shape B carries the file's size; shape A does not
        render = sim.render(done["output"]["render_id"])
        assert done["output"]["size"] == render["output"]["size"]
    if name == "render_shape_a":
        assert done["output"]["size"] is None


# ---- issue 10, defect 1: a first message refused before its stream began ------------------------------------

REFUSALS = {
    "http_429": {"kind": "http_429", "retry_after": 1},
    "http_503": {"kind": "http_503"},
    "json_error": {"kind": "json_error"},
}
EMPTY_FORMS = ["null", "empty_object", "no_tracks", "empty_tracks"]
FIRST_REFUSED = [(r, f, False) for r in REFUSALS for f in EMPTY_FORMS] + [(r, "empty_object", True) for r in REFUSALS]


@pytest.mark.parametrize(
    ("refusal", "form", "with_asset"),
    FIRST_REFUSED,
    ids=[f"{r}-{f}{'-asset' if a else ''}" for r, f, a in FIRST_REFUSED],
)
def test_first_message_refused_on_a_fresh_session_is_sent_once(
    api, tenant, proving: SimAdmin, services, refusal: str, form: str, with_asset: bool
) -> None:
    """The turn's first send is refused (429, 5xx, a JSON error envelope) on a session whose draft is empty in one
    of its forms: it was not sent, so it is sent again, once, and the job succeeds."""
    sim = proving
    sim.configure(empty_draft_form=form)
    before = pv.endpoint_calls(sim)
    sim.arm({"endpoint": "run_sse", "times": 1, **REFUSALS[refusal]})
    job = pv.submit(api, tenant, assets=[ASSET] if with_asset else [])
    done = wait_job(api, tenant, job["id"], timeout=60)
    assert done["status"] == "succeeded", done["error"]
    e = plain_job(with_asset)
    e.add(run_sse=1)  # the refused send, and the one that was taken
    assert pv.calls_since(sim, before) == dict(e.calls)
    sid = pv.job_row(job["id"]).session_id
    assert sim.activity(sid)["messages_sent"] == 1 and sim.activity(sid)["edits_applied"] == 1
    assert pv.turn_row(job["id"]).message_attempts == 2
    sim.assert_no_duplicates()


def test_first_message_meeting_a_refused_connection_is_sent_once(api, tenant, proving: SimAdmin, services, sim_url):
    """Nothing listens where the streams worker sends its message (connection refused): the message was not sent,
    the turn says so, and once the upstream is reachable it is sent, once."""
    from tests.utils.tcp import SwitchPort

    sim = proving
    sim.configure(empty_draft_form="empty_object")
    port = SwitchPort(int(sim_url.rsplit(":", 1)[1]))
    try:
        with pv.WorkerSwap(services) as swap:
            swap.start("steps", "steps,webhooks")
            swap.start("streams", "streams", REELMILL_NEMO_BASE_URL=port.url)
            before = pv.endpoint_calls(sim)
            job = pv.submit(api, tenant)
            wait_until(
                lambda: (lambda t: t.message_attempts >= 1 and t.message_state == "pending")(pv.turn_row(job["id"])),
                what="the refused send recorded as not sent",
            )
            assert sim.endpoint_count("run_sse") == 0
            port.relay()
            done = wait_job(api, tenant, job["id"], timeout=60)
    finally:
        port.close()
    assert done["status"] == "succeeded", done["error"]
    assert pv.calls_since(sim, before) == dict(plain_job(False).calls)
    sid = pv.job_row(job["id"]).session_id
    assert sim.activity(sid)["messages_sent"] == 1
    assert pv.turn_row(job["id"]).message_attempts >= 2
    sim.assert_no_duplicates()


def test_expired_token_forms_with_a_configured_token(api, tenant, proving: SimAdmin, services) -> None:
    """With a configured token (NEMO_TOKEN) a 1001/1010/1011/401 is met as the contract says: the token reloaded,
    the call retried; the same upstream user keeps its session and its render, so nothing else changes."""
    sim = proving
    token = f"nmv_usr_configured_{uuid.uuid4().hex}"
    sim.add_token(token, credits=1_000_000)
    with pv.WorkerSwap(services) as swap:
        swap.start("configured", "steps,webhooks,streams", REELMILL_NEMO_TOKEN=token)
        for name in [n for n in MATRIX if n.startswith("token_expired_")]:
            before = pv.endpoint_calls(sim)
            sim.apply_variant(name)
            job = pv.submit(api, tenant)
            done = wait_job(api, tenant, job["id"], timeout=60)
            assert done["status"] == "succeeded", (name, done["error"])
            e = plain_job(False)
            e.add(run_sse=1, render_status=1)  # each rejected call once more, with the reloaded token
            assert pv.calls_since(sim, before) == dict(e.calls), name
            assert sim.activity(pv.job_row(job["id"]).session_id)["messages_sent"] == 1, name
    sim.assert_no_duplicates()


def test_a_session_that_keeps_vanishing_fails_the_job(api, tenant, proving: SimAdmin) -> None:
    sim = proving
    sim.fault("run_sse", "session_lost", times=30)  # every message for a while: "Session not found"
    job = pv.submit(api, tenant)
    done = wait_job(api, tenant, job["id"], timeout=120)
    sim.clear_faults()
    assert (done["status"], done["error"] and done["error"]["code"]) == ("failed", "upstream_unavailable")
    assert sim.endpoint_count("session") <= 8, "no more sessions than the attempt budget"
