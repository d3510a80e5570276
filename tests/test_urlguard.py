"""The outbound-URL guard (shared/urlguard.py): every forbidden address family, IPv4 and IPv6, by literal and by a
name that resolves to it (an injected resolver: no DNS traffic leaves the machine), the syntax rules, the static
check intake uses (no lookup at all), the lookup's deadline, and the exact addresses an operator allows."""

from __future__ import annotations

import threading
import time

import pytest

from shared.settings import Settings
from shared.urlguard import ForbiddenUrl, Resolver, check_static, check_url, checked_addresses
from shared.webhooks.sender import pinned_target

STRICT = Settings(outbound_allow_private=False, outbound_allow_http=False)
HTTP_OK = Settings(outbound_allow_private=False, outbound_allow_http=True)
LAB = Settings(outbound_allow_private=True, outbound_allow_http=True)

FORBIDDEN = {
    "127.0.0.1": "loopback",
    "127.8.9.10": "loopback",
    "::1": "loopback",
    "10.1.2.3": "private",
    "172.16.0.1": "private",
    "172.31.255.254": "private",
    "192.168.1.1": "private",
    "fc00::1": "private",
    "fd12:3456::1": "private",
    "fec0::1": "site-local",  # deprecated IPv6 site-local (fec0::/10): still routed inside some networks
    "feff:ffff::1": "site-local",
    "169.254.169.254": "link-local",
    "169.254.0.1": "link-local",
    "fe80::1": "link-local",
    "224.0.0.1": "multicast",
    "239.255.255.250": "multicast",
    "ff02::1": "multicast",
    "0.0.0.0": "unspecified",
    "::": "unspecified",
    "::ffff:127.0.0.1": "loopback",
    "::ffff:10.0.0.1": "private",
    "::ffff:169.254.169.254": "link-local",
    "::ffff:0.0.0.0": "unspecified",
    "64:ff9b::a00:1": "private",  # NAT64 of 10.0.0.1
    "2002:7f00:1::": "loopback",  # 6to4 of 127.0.0.1
    "::127.0.0.1": "loopback",  # IPv4-compatible
    "100.64.0.1": "not globally routable",  # carrier-grade NAT
    "255.255.255.255": "",
    "198.18.0.1": "",
    "2001:db8::1": "",
}
PUBLIC = ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"]


def literal(address: str) -> str:
    return f"https://[{address}]/hook" if ":" in address else f"https://{address}/hook"


def resolving_to(*addresses: str) -> Resolver:
    def resolver(host: str, port: int) -> list[str]:
        assert port == 443
        return list(addresses)

    return resolver


@pytest.mark.parametrize(("address", "label"), FORBIDDEN.items())
def test_forbidden_literal(address: str, label: str) -> None:
    with pytest.raises(ForbiddenUrl) as err:
        check_url(literal(address), settings=STRICT, resolver=resolving_to("8.8.8.8"))
    assert label in err.value.reason


@pytest.mark.parametrize(("address", "label"), FORBIDDEN.items())
def test_forbidden_by_name(address: str, label: str) -> None:
    with pytest.raises(ForbiddenUrl) as err:
        check_url("https://hooks.example.test/x", settings=STRICT, resolver=resolving_to(address))
    assert label in err.value.reason and "'hooks.example.test'" in err.value.reason


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address: str) -> None:
    assert check_url(literal(address), settings=STRICT) == literal(address)
    assert checked_addresses("https://hooks.example.test/x", settings=STRICT, resolver=resolving_to(address)) == [
        address
    ]


def test_one_private_answer_among_public_ones_is_refused() -> None:
    with pytest.raises(ForbiddenUrl):
        check_url("https://mixed.example.test/", settings=STRICT, resolver=resolving_to("8.8.8.8", "10.0.0.7"))


def test_localhost_by_the_system_resolver() -> None:
    with pytest.raises(ForbiddenUrl) as err:
        check_url("https://localhost:8443/hook", settings=STRICT)
    assert "loopback" in err.value.reason


def test_decimal_and_short_ipv4_forms_resolve_to_loopback() -> None:
    for url in ("https://2130706433/", "https://127.1/", "https://0x7f.0.0.1/"):
        with pytest.raises(ForbiddenUrl):
            check_url(url, settings=STRICT)


def test_unresolvable_name_is_refused() -> None:
    def nxdomain(host: str, port: int) -> list[str]:
        raise OSError("Name or service not known")

    with pytest.raises(ForbiddenUrl) as err:
        check_url("https://nowhere.example.test/", settings=STRICT, resolver=nxdomain)
    assert "does not resolve" in err.value.reason


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://8.8.8.8/hook", "scheme"),
        ("ftp://8.8.8.8/hook", "scheme"),
        ("//8.8.8.8/hook", "scheme"),
        ("https:///hook", "no host"),
        ("https://user:pw@8.8.8.8/hook", "credentials"),
        ("https://8.8.8.8:99999/hook", "not valid"),
        ("https://8.8.8.8/a b", "whitespace"),
        ("", "empty"),
    ],
)
def test_syntax_rules(url: str, reason: str) -> None:
    with pytest.raises(ForbiddenUrl) as err:
        check_url(url, settings=STRICT)
    assert reason in err.value.reason


def test_http_only_when_configured() -> None:
    assert check_url("http://8.8.8.8/hook", settings=HTTP_OK) == "http://8.8.8.8/hook"
    with pytest.raises(ForbiddenUrl):
        check_url("http://10.0.0.1/hook", settings=HTTP_OK)


def test_allow_private_lifts_the_address_rule_not_the_syntax_rule() -> None:
    assert check_url("http://127.0.0.1:9/hook", settings=LAB) == "http://127.0.0.1:9/hook"
    assert "127.0.0.1" in checked_addresses("http://localhost:9/hook", settings=LAB)  # resolved, to be pinned
    with pytest.raises(ForbiddenUrl):
        check_url("gopher://127.0.0.1/", settings=LAB)
    with pytest.raises(ForbiddenUrl):
        check_url("http://u:p@127.0.0.1/", settings=LAB)


def test_sender_connects_to_the_address_the_guard_approved() -> None:
    url, headers, ext = pinned_target("https://hooks.example.test:8443/in?x=1", ["2606:4700::1", "93.184.216.34"])
    assert url == "https://93.184.216.34:8443/in?x=1"  # IPv4 first, same port, path and query
    assert headers == {"host": "hooks.example.test:8443"} and ext == {"sni_hostname": "hooks.example.test"}
    url, headers, _ = pinned_target("https://hooks.example.test/in", ["2606:4700::1"])
    assert url == "https://[2606:4700::1]/in" and headers == {"host": "hooks.example.test"}
    assert pinned_target("https://8.8.8.8/in", ["8.8.8.8"]) == ("https://8.8.8.8/in", {}, {})
    assert pinned_target("http://127.0.0.1:9/in", []) == ("http://127.0.0.1:9/in", {}, {})


def no_lookup(host: str, port: int) -> list[str]:
    raise AssertionError(f"the static check looked up {host}")


@pytest.mark.parametrize(("address", "label"), FORBIDDEN.items())
def test_static_check_refuses_forbidden_literals(address: str, label: str) -> None:
    with pytest.raises(ForbiddenUrl) as err:
        check_static(literal(address), settings=STRICT)
    assert label in err.value.reason


@pytest.mark.parametrize(
    "url", ["https://2130706433/", "https://127.1/", "https://0x7f.0.0.1/", "https://017700000001/", "https://10.1/"]
)
def test_static_check_reads_every_ipv4_form_without_dns(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("socket.getaddrinfo", lambda *a, **k: pytest.fail("a DNS lookup was made"))
    with pytest.raises(ForbiddenUrl) as err:
        check_static(url, settings=STRICT)
    assert "loopback" in err.value.reason or "private" in err.value.reason


def test_static_check_never_resolves_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("socket.getaddrinfo", lambda *a, **k: pytest.fail("a DNS lookup was made"))
    # a name that resolves nowhere from here is fine: NemoVideo fetches assets, reelmill does not
    assert check_static("https://cdn.nowhere.example.test/a.mp4", settings=STRICT)
    for url in ("https://localhost/a.mp4", "https://db.localhost:5432/x", "https://LOCALHOST./x"):
        with pytest.raises(ForbiddenUrl, match="loopback name"):
            check_static(url, settings=STRICT)
    for url, reason in [
        ("http://8.8.8.8/", "scheme"),
        ("https://u:p@x.test/", "credentials"),
        ("https://x.test/\x00", "control"),
    ]:
        with pytest.raises(ForbiddenUrl, match=reason):
            check_static(url, settings=STRICT)


def test_a_lookup_that_hangs_is_cut_at_the_deadline() -> None:
    release = threading.Event()

    def hanging(host: str, port: int) -> list[str]:
        release.wait(30)
        return ["8.8.8.8"]

    started = time.monotonic()
    try:
        with pytest.raises(ForbiddenUrl, match=r"took longer than 0\.3 s"):
            checked_addresses("https://slow.example.test/", settings=STRICT, resolver=hanging, timeout=0.3)
        assert time.monotonic() - started < 3
    finally:
        release.set()


def allowing(*pairs: str) -> Settings:
    return Settings(outbound_allow_addresses=",".join(pairs), outbound_allow_private=False, outbound_allow_http=False)


def test_allowed_addresses_are_exact_host_and_port() -> None:
    sim = allowing("127.0.0.1:8123", "[::1]:9000", "Localhost:7000")
    assert sim.outbound_allow_addresses == ["127.0.0.1:8123", "[::1]:9000", "localhost:7000"]
    # plain http and a loopback address, for exactly the listed pairs
    assert check_static("http://127.0.0.1:8123/media/a.mp4", settings=sim)
    assert check_url("http://127.0.0.1:8123/hook", settings=sim, resolver=no_lookup)
    assert check_url("http://[::1]:9000/hook", settings=sim, resolver=no_lookup)
    assert checked_addresses("http://localhost:7000/hook", settings=sim, resolver=resolving_to_port("127.0.0.1"))
    # another port, another loopback address, another private address: refused as ever
    for url in (
        "http://127.0.0.1:8124/",
        "https://127.0.0.1:8124/",
        "https://127.0.0.2:8123/",
        "https://10.0.0.1:8123/",
    ):
        with pytest.raises(ForbiddenUrl):
            check_url(url, settings=sim, resolver=no_lookup)
    with pytest.raises(ForbiddenUrl, match="scheme"):
        check_static("http://localhost:7001/", settings=sim)
    with pytest.raises(ForbiddenUrl, match="resolves to a loopback"):  # a name resolving to an unlisted pair
        checked_addresses("https://hooks.example.test:8124/", settings=sim, resolver=resolving_to_port("127.0.0.1"))
    # a name that resolves to a listed pair is allowed by its address (https: http needs the pair as written)
    assert checked_addresses(
        "https://hooks.example.test:8123/", settings=sim, resolver=resolving_to_port("127.0.0.1")
    ) == ["127.0.0.1"]
    with pytest.raises(ForbiddenUrl, match="credentials"):  # the syntax rules still hold
        check_static("http://u:p@127.0.0.1:8123/", settings=sim)


def resolving_to_port(*addresses: str) -> Resolver:
    return lambda host, port: list(addresses)


@pytest.mark.parametrize("bad", ["127.0.0.1", "127.0.0.1:", "127.0.0.1:99999", ":80", "::1:80"])
def test_allowed_addresses_must_be_host_and_port(bad: str) -> None:
    with pytest.raises(ValueError, match="host:port"):
        allowing(bad)
