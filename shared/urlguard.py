"""The outbound-URL guard: reelmill never sends a request (webhook, asset URL) into the network it runs in.

Two checks, one for each moment:
- `check_static(url)` (intake: job and batch webhooks, asset URLs) never touches the network. The scheme is https
  (http only with `outbound_allow_http`), there is a host, no credentials, no whitespace; a host that is an IP
  literal (including the decimal, hex and short IPv4 forms such as `2130706433` or `127.1`) or a `localhost` name
  must be a public unicast address. A host name is not resolved: an asset is fetched by NemoVideo, not by reelmill,
  and a webhook's name is resolved when it is sent.
- `checked_addresses(url)` (each webhook attempt) adds the DNS answer: every address the host resolves to must be
  public, the lookup runs off the caller's thread with a deadline, and the sender connects to exactly the addresses
  returned (no second DNS answer in between).

Refused addresses: loopback, private (RFC 1918, ULA), site-local (fec0::/10), link-local (which holds
169.254.169.254, the cloud metadata service), multicast, unspecified, shared/reserved ranges, and the IPv6 forms
that carry an IPv4 address (mapped, 6to4, NAT64, IPv4-compatible) of any of these.

Exceptions, narrowest first: `outbound_allow_addresses` lists exact `host:port` pairs (as URLs write them, or as
a name resolves) that may be reached even though private, loopback or plain http (`reelmill up --sim`: the
simulator and a local receiver); `outbound_allow_private` lifts the address rule for every target (tests). Neither
lifts the syntax rules.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import SplitResult, urlsplit

from shared.settings import Settings, get_settings

Resolver = Callable[[str, int], list[str]]
_WHITESPACE = re.compile(r"\s")  # the same characters as str.isspace, ten times faster than testing each one
_NUMERIC_V4 = re.compile(r"[0-9a-fA-FxX.]+")
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
DNS_THREADS = 8


class ForbiddenUrl(ValueError):
    """The URL may not be used; ``reason`` says why in words a client can act on."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(reason)


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


# IPv6 forms that carry an IPv4 address a gateway or the host's stack may deliver to: NAT64 (RFC 6052, 8215)
# and the deprecated IPv4-compatible ::/96. (IPv4-mapped and 6to4 have their own properties.)
_NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))
_V4_COMPATIBLE = ipaddress.IPv6Network("::/96")


def embedded_ipv4(addr: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, 6to4, NAT64, IPv4-compatible), if any."""
    if addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    if addr.sixtofour is not None:
        return addr.sixtofour
    if any(addr in net for net in (*_NAT64, _V4_COMPATIBLE)):
        return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    return None


def address_problem(addr: IPAddress) -> str | None:
    """Why ``addr`` is not a public unicast address, or None when it is."""
    if isinstance(addr, ipaddress.IPv6Address) and not addr.is_loopback and not addr.is_unspecified:
        inner = embedded_ipv4(addr)
        if inner is not None:
            problem = address_problem(inner)
            return f"{problem} (embedded in IPv6)" if problem else None
    checks = (
        (addr.is_unspecified, "unspecified"),
        (addr.is_loopback, "loopback"),
        (addr.is_link_local, "link-local"),
        (isinstance(addr, ipaddress.IPv6Address) and addr.is_site_local, "site-local"),
        (addr.is_multicast, "multicast"),
        (addr.is_private, "private"),
        (addr.is_reserved, "reserved"),
        (not addr.is_global, "not globally routable"),
    )
    for bad, label in checks:
        if bad:
            return label
    return None


@dataclass(frozen=True)
class Target:
    """A URL that passed the static check: its host as written (lower case) and port."""

    url: str
    host: str
    port: int
    literal: str | None  # the host's address when it is an IP literal
    allowed: bool  # `host:port` is in `outbound_allow_addresses`


def check_static(url: str, *, settings: Settings | None = None) -> str:
    """Return ``url`` if it passes every check that needs no network (see the module docstring)."""
    static_target(url, settings or get_settings())
    return url


def static_target(url: str, settings: Settings) -> Target:
    parts = _parse(url)
    host = (parts.hostname or "").rstrip(".")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    literal = _literal_address(host)
    allowed = _pair(literal or host, port) in settings.outbound_allow_addresses
    schemes = ("https", "http") if settings.outbound_allow_http or allowed else ("https",)
    if parts.scheme not in schemes:
        raise ForbiddenUrl(url, f"scheme must be {' or '.join(schemes)}, not {parts.scheme or 'missing'!r}")
    if parts.username or parts.password:
        raise ForbiddenUrl(url, "credentials in the URL are not allowed")
    if not (allowed or settings.outbound_allow_private):
        if literal is not None and (problem := _problem_of(literal)):
            raise ForbiddenUrl(url, f"host {host!r} is a {problem} address, which is not allowed")
        if host == "localhost" or host.endswith(".localhost"):
            raise ForbiddenUrl(url, f"host {host!r} is a loopback name, which is not allowed")
    return Target(url, host, port, literal, allowed)


def check_url(
    url: str, *, settings: Settings | None = None, resolver: Resolver | None = None, timeout: float = 10.0
) -> str:
    """Return ``url`` if reelmill may send to it now, its host resolved; raise ForbiddenUrl otherwise."""
    checked_addresses(url, settings=settings, resolver=resolver, timeout=timeout)
    return url


def checked_addresses(
    url: str, *, settings: Settings | None = None, resolver: Resolver | None = None, timeout: float = 10.0
) -> list[str]:
    """Check ``url`` like `check_static`, resolve its host (within ``timeout`` seconds) and check every address;
    return the addresses, so a sender can connect to exactly those."""
    settings = settings or get_settings()
    target = static_target(url, settings)
    found = [target.literal] if target.literal else _resolve(target, resolver, timeout)
    if target.allowed or settings.outbound_allow_private:
        return found
    for text in found:
        if _pair(text, target.port) in settings.outbound_allow_addresses:
            continue
        problem = _problem_of(text)
        if problem:
            raise ForbiddenUrl(
                url, f"host {target.host!r} resolves to a {problem} address ({text}), which is not allowed"
            )
    return found


def _pair(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _parse(url: str) -> SplitResult:
    if not isinstance(url, str) or not url.strip():
        raise ForbiddenUrl(str(url), "URL is empty")
    if len(url) > 2048 or _WHITESPACE.search(url):
        raise ForbiddenUrl(url, "URL contains whitespace or is longer than 2048 characters")
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises on a port that is not a number
    except ValueError as exc:
        raise ForbiddenUrl(url, f"URL is not valid: {exc}") from None
    if not parts.hostname:
        raise ForbiddenUrl(url, "URL has no host")
    if any(ord(c) < 33 or ord(c) == 127 for c in url) or not url.isprintable():
        raise ForbiddenUrl(url, "URL contains a control character")
    return parts


# An address's class never changes, so its verdict is cached: a batch of 100,000 rows that name the same few hosts
# parses each address once (ipaddress parsing was a fifth of the time to accept such a file).
@lru_cache(maxsize=4096)
def _problem_of(text: str) -> str | None:
    return address_problem(ipaddress.ip_address(text.split("%", 1)[0]))


@lru_cache(maxsize=4096)
def _literal_address(host: str) -> str | None:
    """``host`` normalised when it is an IP literal, else None. The decimal, hex, octal and short IPv4 forms that
    resolvers accept (`2130706433`, `0x7f.1`, `127.1`) count as literals: `inet_aton` reads them, without DNS."""
    try:
        return str(ipaddress.ip_address(host.split("%", 1)[0]))
    except ValueError:
        pass
    if _NUMERIC_V4.fullmatch(host) and any(c.isdigit() for c in host):
        try:
            return str(ipaddress.IPv4Address(socket.inet_aton(host)))
        except OSError:
            return None
    return None


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _dns_pool() -> ThreadPoolExecutor:
    """A few threads for lookups: a lookup that hangs holds one of them, never the caller."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=DNS_THREADS, thread_name_prefix="urlguard-dns")
        return _pool


def _resolve(target: Target, resolver: Resolver | None, timeout: float) -> list[str]:
    future = _dns_pool().submit(resolver or system_resolver, target.host, target.port)
    try:
        found = future.result(timeout=max(timeout, 0.001))
    except FutureTimeout:
        future.cancel()
        raise ForbiddenUrl(target.url, f"looking up host {target.host!r} took longer than {timeout:.1f} s") from None
    except (OSError, UnicodeError) as exc:
        raise ForbiddenUrl(target.url, f"host {target.host!r} does not resolve ({exc.__class__.__name__})") from None
    if not found:
        raise ForbiddenUrl(target.url, f"host {target.host!r} does not resolve")
    return found
