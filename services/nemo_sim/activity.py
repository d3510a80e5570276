"""What each session received, and the duplicates a client must never cause (``GET /_sim/counters``).

Per session: messages sent (accepted by ``/run_sse``: a run started), edits applied, renders submitted
(accepted). A duplicate message is the same text accepted twice in one session. A duplicate render is an
accepted submit for a session whose draft had not changed since an earlier accepted submit of it that has
not failed or been canceled (``renders.duplicate_of``): it renders the same draft again. Both come from the
sessions and renders themselves, so they survive a restart with a state file.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from services.nemo_sim.state import SimState


def session_activity(sim: SimState) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for sid, session in sim.sessions.items():
        repeated = {text: n for text, n in Counter(session.messages).items() if n > 1}
        duplicates = []
        for render_id in session.renders:
            render = sim.renders.get(render_id)
            if render is not None and render.duplicate_of is not None:
                duplicates.append(
                    {"render_id": render_id, "duplicate_of": render.duplicate_of, "draft_version": render.draft_version}
                )
        out[sid] = {
            "user_id": session.user_id,
            "token": session.token_key,
            "lost": session.lost,
            "messages_sent": len(session.messages),
            "edits_applied": session.edits,
            "renders_submitted": len(session.renders),
            "runs_in_progress": session.runs_in_progress,
            "duplicate_messages": repeated,
            "duplicate_renders": duplicates,
        }
    return out


def summary(sim: SimState, per_session: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Totals that make duplicates obvious: zero everywhere is what a careful client achieves."""
    dup_messages = {sid: sum(n - 1 for n in s["duplicate_messages"].values()) for sid, s in per_session.items()}
    dup_renders = {sid: len(s["duplicate_renders"]) for sid, s in per_session.items()}
    sessions_per_token: Counter[str] = Counter(s["token"] for s in per_session.values() if s["token"])
    return {
        "sessions": len(per_session),
        "messages_sent": sum(s["messages_sent"] for s in per_session.values()),
        "edits_applied": sum(s["edits_applied"] for s in per_session.values()),
        "renders_submitted": sum(s["renders_submitted"] for s in per_session.values()),
        "duplicate_messages": sum(dup_messages.values()),
        "duplicate_renders": sum(dup_renders.values()),
        "sessions_with_duplicates": sorted(sid for sid in per_session if dup_messages[sid] or dup_renders[sid]),
        "sessions_per_token": dict(sessions_per_token),
        "faults_fired": sim.ledger.faults_fired()["total"],
        "capacity_429": sim.capacity.refused_totals(),
    }


def counters(sim: SimState) -> dict[str, Any]:
    per_session = session_activity(sim)
    return {
        **sim.ledger.snapshot(),
        "runs_in_progress": len(sim.runs),
        "per_session": per_session,
        "per_token": sim.capacity.snapshot(),
        "summary": summary(sim, per_session),
    }
