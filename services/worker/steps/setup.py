"""credential -> session -> upload."""

from __future__ import annotations

from pathlib import Path

from services.worker.context import StepContext
from services.worker.outcome import Advance
from shared.nemo.draft import EMPTY_DRAFT
from shared.tables import Stage


def credential(ctx: StepContext) -> Advance:
    """Make sure the shared upstream token exists (minted once, reused by every job)."""
    ctx.client.tokens.token()
    return Advance(stage=Stage.session, note="credential ready")


def session(ctx: StepContext) -> Advance:
    if ctx.job.session_id:
        return Advance(note="session kept")
    info = ctx.client.create_session(language=ctx.job.language, profile=ctx.job.profile)
    fields = {
        "session_id": info.session_id,
        "task_id": info.task_id,
        "upstream_user_id": info.user_id,
        "draft_fp": EMPTY_DRAFT,  # a new session has no edit yet (UPSTREAM.md: its draft is empty)
    }
    return Advance(job=fields, note=f"session {info.session_id}")


def upload(ctx: StepContext) -> Advance:
    turn, job = ctx.turn, ctx.job
    if turn.upload_done:
        return Advance()
    assert job.session_id
    uploaded: list[dict] = []
    paths = [Path(f["path"]) for f in job.files] if turn.seq == 0 else []
    if paths:
        uploaded += [vars(f) for f in ctx.client.upload_files(job.session_id, paths, profile=job.profile)]
    if turn.assets:
        uploaded += [vars(f) for f in ctx.client.upload_urls(job.session_id, turn.assets, profile=job.profile)]
    fields: dict = {"uploaded": uploaded, "upload_done": True}
    if turn.intent == "upload":
        fields["messages"] = [
            f"Uploaded {len(uploaded)} file(s) to the session: {', '.join(f['filename'] for f in uploaded)}"
        ]
    # an upload may change the session's draft (`session_state_applied`): what it looks like now is unknown
    job_fields = {"draft_fp": None} if uploaded else {}
    return Advance(turn=fields, job=job_fields, note=f"uploaded {len(uploaded)}")
