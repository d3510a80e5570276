"""The outbound-URL guard: reelmill never sends a request (webhook, asset URL) into the network it runs in.

A URL passes when its scheme is https (http only if `outbound_allow_http`), it has a host, and every address the
host resolves to is a public unicast address. Refused: loopback, private (RFC 1918, ULA), link-local (which holds
169.254.169.254, the cloud metadata service), multicast, unspecified, shared/reserved ranges, and IPv4-mapped IPv6
forms of all of these. `outbound_allow_private` (tests, `reelmill up`) lifts the address rule, never the syntax rule.
The check runs when a job is created and again right before each delivery, since DNS answers can change.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable
from contextvars import ContextVar
from functools import lru_cache
from urllib.parse import urlsplit

from shared.settings import Settings, get_settings

Resolver = Callable[[str, int], list[str]]
_WHITESPACE = re.compile(r"\s")  # the same characters as str.isspace, ten times faster than testing each one
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class ForbiddenUrl(ValueError):
    """The URL may not be used; ``reason`` says why in words a client can act on."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(reason)


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


# A resolver for the checks made in the current context, when no explicit one is passed: a batch upload checks
# every row's asset URLs and sets a per-upload cache here, so 100,000 rows cost one DNS lookup per host.
scoped_resolver: ContextVar[Resolver | None] = ContextVar("urlguard_scoped_resolver", default=None)


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
        (addr.is_multicast, "multicast"),
        (addr.is_private, "private"),
        (addr.is_reserved, "reserved"),
        (not addr.is_global, "not globally routable"),
    )
    for bad, label in checks:
        if bad:
            return label
    return None


def check_url(url: str, *, settings: Settings | None = None, resolver: Resolver | None = None) -> str:
    """Return ``url`` if reelmill may send to it; raise ForbiddenUrl otherwise."""
    checked_addresses(url, settings=settings, resolver=resolver)
    return url


def checked_addresses(url: str, *, settings: Settings | None = None, resolver: Resolver | None = None) -> list[str]:
    """Check ``url`` like `check_url` and return the public addresses its host resolved to, so a sender can
    connect to exactly those (no second DNS answer in between). Empty when `outbound_allow_private` is set."""
    settings = settings or get_settings()
    parts = _parse(url)
    allowed = ("https", "http") if settings.outbound_allow_http else ("https",)
    if parts.scheme not in allowed:
        raise ForbiddenUrl(url, f"scheme must be {' or '.join(allowed)}, not {parts.scheme or 'missing'!r}")
    host = parts.hostname or ""
    if parts.username or parts.password:
        raise ForbiddenUrl(url, "credentials in the URL are not allowed")
    if settings.outbound_allow_private:
        return []
    port = parts.port or (443 if parts.scheme == "https" else 80)
    found = _addresses(host, port, resolver or scoped_resolver.get() or system_resolver, url)
    for text in found:
        problem = _problem_of(text)
        if problem:
            raise ForbiddenUrl(url, f"host {host!r} resolves to a {problem} address ({text}), which is not allowed")
    return found


def _parse(url: str):
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
    return parts


# An address's class never changes, so its verdict is cached: a batch of 100,000 rows that name the same few hosts
# parses each address once (ipaddress parsing was a fifth of the time to accept such a file).
@lru_cache(maxsize=4096)
def _problem_of(text: str) -> str | None:
    return address_problem(ipaddress.ip_address(text.split("%", 1)[0]))


@lru_cache(maxsize=4096)
def _literal_address(host: str) -> str | None:
    """``host`` normalised when it is an IP literal, else None."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None


def _addresses(host: str, port: int, resolver: Resolver, url: str) -> list[str]:
    literal = _literal_address(host)
    if literal is not None:
        return [literal]
    try:
        found = resolver(host, port)
    except (OSError, UnicodeError) as exc:
        raise ForbiddenUrl(url, f"host {host!r} does not resolve ({exc.__class__.__name__})") from None
    if not found:
        raise ForbiddenUrl(url, f"host {host!r} does not resolve")
    return found
