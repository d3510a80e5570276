"""credential -> session -> upload."""

from __future__ import annotations

from pathlib import Path

from services.worker.context import StepContext
from services.worker.outcome import Outcome
from shared.tables import JobStatus, Stage


def credential(ctx: StepContext) -> Outcome:
    """Make sure the shared upstream token exists (minted once, reused by every job)."""
    ctx.client.tokens.token()
    status = JobStatus.starting if ctx.job.status == JobStatus.queued.value else None
    return Outcome.advance(Stage.session.value, status=status, note="credential ready")


def session(ctx: StepContext) -> Outcome:
    if ctx.job.session_id:
        return Outcome.advance(note="session kept")
    info = ctx.client.create_session(language=ctx.job.language, profile=ctx.job.profile)
    return Outcome.advance(
        job={"session_id": info.session_id, "task_id": info.task_id, "upstream_user_id": info.user_id},
        note=f"session {info.session_id}",
    )


def upload(ctx: StepContext) -> Outcome:
    turn, job = ctx.turn, ctx.job
    if turn.upload_done:
        return Outcome.advance()
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
    return Outcome.advance(turn=fields, note=f"uploaded {len(uploaded)}")
