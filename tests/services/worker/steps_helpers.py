"""Running one step without a worker or a database: a step context whose checkpoints and live events stay in
memory, on a real NemoClient talking to the simulator over HTTP."""

from __future__ import annotations

from typing import Any

from services.worker.context import StepContext
from shared.nemo.client import NemoClient
from shared.nemo.tokens import StaticTokenProvider
from shared.settings import get_settings
from shared.tables import Job, JobStatus, JobTurn, Stage


class MemoryContext(StepContext):
    checkpoints: list[dict[str, Any]]
    events: list[tuple[str, dict[str, Any]]]

    def checkpoint(self, **turn_fields: Any) -> None:
        self.checkpoints.append(turn_fields)
        for name, value in turn_fields.items():
            setattr(self.turn, name, value)

    def live(self, type: str, data: dict[str, Any]) -> None:
        self.events.append((type, data))


def client_for(sim, token: str = "nmv_usr_steps") -> NemoClient:
    sim.add_token(token, credits=1_000_000)
    return NemoClient(sim.base_url, StaticTokenProvider(token))


def context(client: NemoClient, stage: Stage, *, session_id: str | None = None, **job_fields: Any) -> MemoryContext:
    job = Job(
        id="job_steps",
        tenant_id="ten_x",
        profile="free-kling-ai-video-generation",
        prompt="a fox running through a snowy forest at dusk",
        stage=stage,
        status=JobStatus.processing,
        session_id=session_id,
        **job_fields,
    )
    turn = JobTurn(id=1, job_id=job.id, seq=0, instruction=job.prompt)
    ctx = MemoryContext(job=job, turns=[turn], owner="test", client=client, settings=get_settings())
    ctx.checkpoints, ctx.events = [], []
    return ctx
