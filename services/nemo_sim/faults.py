"""Injected faults: ``POST /_sim/faults`` arms one; matching requests fire it, ``times`` times (default once),
or a ``rate`` share of them (until cleared, or ``times`` fires), drawn from a generator seeded by the config's
``seed``, the fault's number and the endpoint, so a scenario replays the same way.

A fault names one ``endpoint``, or ``endpoints``: a list, or a class (``ENDPOINT_CLASSES``). Through a class
a kind reaches only the endpoints where it means something (``APPLIES``): a lost session where a session is
named, an expired token where a token is needed, an in-stream error on ``/run_sse``.

Most kinds replace the reply (``fault_replies.py``). ``reset`` kills the connection before anything is done
or sent; ``reset_after_accept`` lets the request do its work, then kills the connection before the first
byte. Two change a message stream and are taken by ``/run_sse`` only once its stream starts: ``drop`` (cut
the connection after ``after_events`` frames) and ``stream_error`` (an in-stream error event). ``drop`` on
any other endpoint handles the request, then cuts the connection after the status line.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Endpoint = Literal[
    "anonymous_token",
    "session",
    "upload",
    "run_sse",
    "state",
    "credits",
    "render_submit",
    "render_status",
    "render_cancel",
    "render_download",
    "render_output",
]
FaultKind = Literal[
    "http_429",
    "http_500",
    "http_502",
    "http_503",
    "http_5xx",
    "http_401",
    "code_1001",
    "code_1010",
    "code_1011",
    "token_expired",
    "code_1002",
    "session_lost",
    "code_2001",
    "code_4001",
    "code_4002",
    "http_402",
    "json_error",
    "reset",
    "reset_after_accept",
    "drop",
    "stream_error",
]
EndpointClass = Literal["all", "retryable", "authenticated", "session", "reads", "writes", "renders", "api"]
STREAM_KINDS = frozenset({"drop", "stream_error"})
ALL: frozenset[str] = frozenset(Endpoint.__args__)  # type: ignore[attr-defined]
RENDER_ENDPOINTS = frozenset({"render_submit", "render_status", "render_cancel", "render_download", "render_output"})
SESSION_ENDPOINTS = frozenset({"upload", "run_sse", "state", "render_submit"})
TOKEN_ENDPOINTS = ALL - {"anonymous_token", "render_output"}
ENDPOINT_CLASSES: dict[str, frozenset[str]] = {
    "all": ALL,
    "retryable": ALL,  # the contract retries every call after a 429, a 5xx or a transport error
    "authenticated": TOKEN_ENDPOINTS,
    "session": SESSION_ENDPOINTS,
    "reads": frozenset({"state", "credits", "render_status", "render_download", "render_output"}),
    "writes": frozenset({"anonymous_token", "session", "upload", "run_sse", "render_submit", "render_cancel"}),
    "renders": RENDER_ENDPOINTS,
    "api": frozenset({"anonymous_token", "session", "upload", "state", "credits"}),
}
_AUTH_KINDS = ("http_401", "code_1001", "code_1010", "code_1011", "token_expired")
APPLIES: dict[str, frozenset[str]] = {
    **dict.fromkeys(_AUTH_KINDS, TOKEN_ENDPOINTS),
    "code_1002": SESSION_ENDPOINTS,
    "session_lost": SESSION_ENDPOINTS,
    "code_2001": frozenset({"run_sse"}),
    "code_4001": frozenset({"upload"}),
    "code_4002": frozenset({"upload"}),
    "http_402": frozenset({"render_submit"}),
    "json_error": frozenset({"run_sse"}),
    "stream_error": frozenset({"run_sse"}),
}
RUN_SSE_ONLY = frozenset({"stream_error", "json_error"})


class FaultSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    endpoint: Endpoint | None = None
    endpoints: EndpointClass | list[Endpoint] | None = None
    kind: FaultKind
    times: int | None = Field(None, ge=1)  # default: 1 without a rate, unlimited with one
    rate: float | None = Field(None, gt=0, le=1)
    retry_after: float | None = Field(None, ge=0)
    retry_after_form: Literal["seconds", "http_date", "absent"] | None = None  # None: the config's
    session_id: str | None = None
    after_events: int | None = Field(None, ge=0)
    code: int | None = None  # json_error: the envelope's code (default 500)
    error_form: int | None = Field(None, ge=0, le=2)  # stream_error: which documented form (default: in turn)

    @model_validator(mode="after")
    def _check(self) -> FaultSpec:
        if (self.endpoint is None) == (self.endpoints is None):
            raise ValueError("give exactly one of endpoint or endpoints")
        if self.kind in RUN_SSE_ONLY and not self.targets() <= {"run_sse"}:
            raise ValueError(f"kind {self.kind} applies to endpoint run_sse only")
        if not self.targets():
            raise ValueError(f"kind {self.kind} applies to none of these endpoints")
        return self

    def targets(self) -> frozenset[str]:
        """The endpoints this fault may fire on."""
        if self.endpoint is not None:
            return frozenset({self.endpoint})
        if isinstance(self.endpoints, list):
            return frozenset(self.endpoints)
        return ENDPOINT_CLASSES[str(self.endpoints)] & APPLIES.get(self.kind, ALL)

    def streams(self, endpoint: str) -> bool:
        """Taken once the stream starts (not when the request arrives)."""
        return self.kind in STREAM_KINDS and endpoint == "run_sse"


@dataclass
class Fault:
    spec: FaultSpec
    number: int
    seed: int
    remaining: int | None  # None: no limit (a rate fault without times)
    fired: int = 0
    draws: dict[str, random.Random] = field(default_factory=dict)

    def draw(self, endpoint: str) -> bool:
        """Whether this matching call fires: always without a rate, else a seeded draw per endpoint."""
        if self.spec.rate is None:
            return True
        rng = self.draws.get(endpoint)
        if rng is None:
            rng = self.draws[endpoint] = random.Random(f"{self.seed}/{self.number}/{endpoint}")
        return rng.random() < self.spec.rate

    def pick(self, choices: tuple[str, ...]) -> str:
        """A seeded choice for kinds that rotate (``http_5xx``)."""
        return choices[(self.fired - 1) % len(choices)]  # fired counts this call already


class FaultBook:
    def __init__(self) -> None:
        self._armed: list[Fault] = []
        self._numbers = 0

    def add(self, spec: FaultSpec, seed: int = 0) -> None:
        remaining = spec.times if spec.times is not None else (None if spec.rate is not None else 1)
        self._armed.append(Fault(spec=spec, number=self._numbers, seed=seed, remaining=remaining))
        self._numbers += 1

    def clear(self) -> None:
        self._armed.clear()
        self._numbers = 0  # re-arming the same faults replays the same draws

    def listing(self) -> list[dict[str, object]]:
        return [
            {**f.spec.model_dump(exclude_none=True), "remaining": f.remaining, "fired": f.fired} for f in self._armed
        ]

    def take(self, endpoint: str, session_id: str | None, stream: bool = False) -> Fault | None:
        """Fire the first armed fault for this request (stream kinds only when ``stream``), if any."""
        for fault in list(self._armed):
            spec = fault.spec
            if endpoint not in spec.targets() or spec.streams(endpoint) != stream:
                continue
            if spec.session_id is not None and spec.session_id != session_id:
                continue
            if not fault.draw(endpoint):
                continue
            fault.fired += 1
            if fault.remaining is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._armed.remove(fault)
            return fault
        return None
