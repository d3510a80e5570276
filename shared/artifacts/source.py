"""Where a mirror's bytes come from: the render's output URL first (through the outbound-URL guard unless it is
the upstream's own origin), else the render's download endpoint. A link that expired falls back to the endpoint;
when every source refuses for good the artifact fails, when any failure may pass it is retried."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from shared.artifacts.errors import SourceGone, SourceUnavailable
from shared.nemo.client import ByteStream, NemoClient
from shared.nemo.errors import NemoError
from shared.settings import Settings
from shared.urlguard import ForbiddenUrl, check_url


@dataclass(frozen=True)
class SourceSpec:
    render_id: str
    profile: str
    output_url: str | None


@dataclass
class Source:
    name: str  # "output_url" | "download_endpoint"
    stream: ByteStream

    def chunks(self) -> Iterator[bytes]:
        """The body; a transport failure mid-way is a retryable `SourceUnavailable`."""
        try:
            yield from self.stream
        except NemoError as exc:
            raise SourceUnavailable(f"the download from the {self.name.replace('_', ' ')} broke off: {exc}") from exc

    def close(self) -> None:
        self.stream.close()


def open_source(client: NemoClient, spec: SourceSpec, settings: Settings) -> Source:
    problems: list[str] = []
    retryable = False
    if spec.output_url:
        try:
            stream = client.open_url(spec.output_url, guard=lambda url: check_url(url, settings=settings))
            return Source("output_url", stream)
        except ForbiddenUrl as exc:
            problems.append(f"output URL refused by the outbound-URL guard: {exc.reason}")
        except NemoError as exc:
            problems.append(f"output URL: {_said(exc)}")
            retryable = exc.retryable
    try:
        return Source("download_endpoint", client.open_render(spec.render_id, profile=spec.profile))
    except NemoError as exc:
        problems.append(f"download endpoint: {_said(exc)}")
        retryable = retryable or exc.retryable
    reason = "; ".join(problems)
    raise SourceUnavailable(reason) if retryable else SourceGone(reason)


def _said(exc: NemoError) -> str:
    status = f"HTTP {exc.http_status}: " if exc.http_status else ""
    return f"{status}{exc.message}"
