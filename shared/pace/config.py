"""The pace's vocabulary and knobs: the call classes, the held resources, and `PaceConfig` read from settings.

A *class* names a kind of upstream call: ``stream`` (opening an SSE message stream), ``render`` (submitting a
render) and ``call`` (everything else: tokens, sessions, uploads, state, credits, render polls). A *resource* is
something held for a while: ``streams`` (a stream from open to close) and ``renders`` (a render from submit to
its end). Each resource belongs to the class whose 429 shrinks it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from shared.settings import Settings

CLASSES: tuple[str, ...] = ("stream", "render", "call")
RESOURCE_CLASS: dict[str, str] = {"streams": "stream", "renders": "render"}
CLASS_RESOURCE: dict[str, str] = {cls: res for res, cls in RESOURCE_CLASS.items()}

_CREDENTIAL_RE = re.compile(r"^[A-Za-z0-9._\-]{1,64}$")


@dataclass(frozen=True)
class PaceConfig:
    """The limits of one credential and how the limiter adapts them. Times in seconds."""

    max_streams: int = 10
    max_renders: int = 5
    rps: float = 5.0
    min_rps: float = 0.2  # a 429 never halves a class's rate below this
    rps_step: float = 0.5  # additive increase of a class's rate
    recover_s: float = 5.0  # a class's rate rises by rps_step after this many seconds' worth of successes
    default_pause_s: float = 30.0  # a 429 without Retry-After pauses its class this long
    max_pause_s: float = 24 * 3600.0  # a Retry-After longer than this is taken as this
    busy_retry_s: float = 2.0  # retry hint when a resource is full or the state is being rebuilt
    unavailable_retry_s: float = 5.0  # retry hint when Redis cannot be reached
    rebuild_lock_s: float = 30.0  # one process rebuilds at a time; a rebuild that dies frees the lock after this
    tombstone_s: float = 120.0  # releases seen while the state is missing are remembered this long

    def __post_init__(self) -> None:
        if self.max_streams < 1 or self.max_renders < 1:
            raise ValueError("max_streams and max_renders must be at least 1")
        if self.rps <= 0 or self.min_rps <= 0:
            raise ValueError("rps and min_rps must be positive")

    @classmethod
    def from_settings(cls, settings: Settings) -> PaceConfig:
        return cls(
            max_streams=settings.upstream_max_streams,
            max_renders=settings.upstream_max_renders,
            rps=settings.upstream_rps,
            min_rps=min(settings.upstream_min_rps, settings.upstream_rps),
            rps_step=settings.upstream_rps_step,
            recover_s=settings.upstream_recover_s,
            default_pause_s=settings.rate_limit_wait_s,
        )

    def max_cap(self, resource: str) -> int:
        return self.max_streams if resource == "streams" else self.max_renders

    def floor_rps(self) -> float:
        return min(self.min_rps, self.rps)


def check_class(cls: str) -> str:
    if cls not in CLASSES:
        raise ValueError(f"unknown call class {cls!r}; expected one of {', '.join(CLASSES)}")
    return cls


def check_resource(resource: str) -> str:
    if resource not in RESOURCE_CLASS:
        raise ValueError(f"unknown resource {resource!r}; expected one of {', '.join(RESOURCE_CLASS)}")
    return resource


def check_credential(credential: str) -> str:
    """A credential id names the credential in Redis keys and metrics: never the token itself."""
    if not _CREDENTIAL_RE.match(credential or ""):
        raise ValueError("credential id must be 1-64 characters of letters, digits, '.', '_' or '-'")
    if credential.startswith(("nmv_", "rm_")):
        raise ValueError("credential id looks like a token; pass a stable non-secret id such as 'default'")
    return credential
