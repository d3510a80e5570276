"""One webhook attempt: re-check the URL, POST the signed body, and report what happened.

- the outbound guard runs right before the request, its DNS lookup off this thread within the attempt's deadline,
  and the request goes to exactly an address the guard approved (the host name still travels as `Host` and TLS
  SNI), so a DNS answer that changes between the check and the connect cannot aim the request inside the network;
- redirects are not followed (a 3xx is a failed attempt), only 2xx is success;
- `webhook_timeout_s` is a deadline for the whole attempt: lookup, connect, TLS, sending, the status line and
  headers, and the excerpt of the answer. A receiver that trickles a byte every few seconds is cut at the deadline
  (per-read timeouts would let it hold the attempt forever). An answer whose headers arrived in time keeps its
  status code; only its excerpt is cut short;
- only an excerpt of the answer (or the error) is kept.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import ssl
import time
from dataclasses import dataclass
from typing import Any

import httpx

from shared.settings import Settings, get_settings
from shared.urlguard import ForbiddenUrl, Resolver, checked_addresses

EXCERPT_CHARS = 500
READ_LIMIT = 4096
USER_AGENT = "reelmill-webhooks/0.1"


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One verifying TLS context for every attempt: building one costs tens of milliseconds of CPU."""
    return httpx.create_ssl_context(trust_env=False)


@dataclass(frozen=True)
class AttemptResult:
    status_code: int | None
    latency_ms: int
    excerpt: str | None = None
    error: str | None = None
    retry_after: str | None = None
    refused: bool = False  # the outbound guard refused the URL: nothing was sent

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def gone(self) -> bool:
        return self.status_code == 410


@dataclass(frozen=True)
class _Request:
    target: str
    body: bytes
    headers: dict[str, str]
    extensions: dict[str, Any]


def send_webhook(
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    settings: Settings | None = None,
    resolver: Resolver | None = None,
) -> AttemptResult:
    """POST ``body`` to ``url`` once, within `webhook_timeout_s` in all. Never raises for network or HTTP trouble:
    it is in the result."""
    settings = settings or get_settings()
    timeout = settings.webhook_timeout_s
    started = time.monotonic()
    try:
        if settings.webhook_loopback_only:
            require_loopback(url)
        addresses = checked_addresses(url, settings=settings, resolver=resolver, timeout=timeout)
    except ForbiddenUrl as exc:
        return AttemptResult(None, _ms(started), error=f"refused by the outbound guard: {exc.reason}", refused=True)
    remaining = started + timeout - time.monotonic()
    try:
        target, extra_headers, extensions = pinned_target(url, addresses)
        request = _Request(target, body, {"user-agent": USER_AGENT, **headers, **extra_headers}, extensions)
        return asyncio.run(_exchange(request, remaining, started))
    except TimeoutError:
        return AttemptResult(
            None, _ms(started), error=f"Timeout: no answer within {timeout:g} s, the deadline of one attempt"
        )
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        return AttemptResult(None, _ms(started), error=_error_text(exc))


async def _exchange(request: _Request, remaining: float, started: float) -> AttemptResult:
    """The HTTP exchange, cut at the deadline. A client per attempt: the pool is keyed by the pinned IP, so a shared
    one could reuse a connection opened (and TLS-verified) for another host name on the same address."""
    deadline = asyncio.get_running_loop().time() + max(remaining, 0.0)
    async with httpx.AsyncClient(
        follow_redirects=False, timeout=max(remaining, 0.001), trust_env=False, verify=tls_context()
    ) as client:
        async with asyncio.timeout_at(deadline):
            sent = client.build_request(
                "POST", request.target, content=request.body, headers=request.headers, extensions=request.extensions
            )
            response = await client.send(sent, stream=True)
        try:
            text = await _read_excerpt(response, deadline)
        finally:
            await response.aclose()
    return AttemptResult(
        response.status_code,
        _ms(started),
        excerpt=_describe(response, text),
        retry_after=response.headers.get("retry-after"),
    )


def pinned_target(url: str, addresses: list[str]) -> tuple[str, dict[str, str], dict[str, Any]]:
    """The URL to connect to, the headers and the request extensions that keep the original host name.

    With no addresses, or a literal IP host, the URL is used as it is."""
    parsed = httpx.URL(url)
    if not addresses or _is_ip(parsed.host):
        return url, {}, {}
    ipv4 = [a for a in addresses if ":" not in a]
    address = (ipv4 or addresses)[0].split("%", 1)[0]
    pinned = parsed.copy_with(host=address)
    return str(pinned), {"host": parsed.netloc.decode("ascii")}, {"sni_hostname": parsed.host}


def require_loopback(url: str) -> None:
    """`webhook_loopback_only` (tests): only `localhost` or a loopback IP literal; no DNS lookup is made."""
    try:
        host = (httpx.URL(url).host or "").lower()
    except httpx.InvalidURL as exc:
        raise ForbiddenUrl(url, f"URL is not valid: {exc}") from None
    if host == "localhost" or (_is_ip(host) and ipaddress.ip_address(host).is_loopback):
        return
    raise ForbiddenUrl(url, f"host {host!r} is not loopback, and this deployment sends webhooks to loopback only")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


async def _read_excerpt(response: httpx.Response, deadline: float) -> str:
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout_at(deadline):
            async for chunk in response.aiter_bytes():
                chunks.append(chunk)
                size += len(chunk)
                if size >= READ_LIMIT:
                    break
    except (httpx.HTTPError, TimeoutError):
        pass  # the status code is the answer; a broken or slow body only shortens the excerpt
    return b"".join(chunks)[:READ_LIMIT].decode("utf-8", errors="replace")[:EXCERPT_CHARS]


def _describe(response: httpx.Response, text: str) -> str | None:
    location = response.headers.get("location")
    if response.is_redirect and location:
        note = f"redirect to {location[:200]} (not followed)"
        return f"{note}: {text}"[:EXCERPT_CHARS] if text else note
    return text or None


def _error_text(exc: Exception) -> str:
    detail = str(exc) or "no detail"
    return f"{type(exc).__name__}: {detail}"[:EXCERPT_CHARS]


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
