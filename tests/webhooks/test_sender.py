"""One attempt over real HTTP to a loopback receiver: success, failures, redirects, timeouts (a tarpit receiver and
a hanging DNS lookup cut at the attempt's deadline), excerpts."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from shared.settings import Settings
from shared.webhooks.sender import EXCERPT_CHARS, send_webhook
from tests.utils.net import free_port
from tests.webhooks.receiver import Receiver, Reply

LAB = Settings(outbound_allow_private=True, outbound_allow_http=True, webhook_timeout_s=0.5)
HEADERS = {"webhook-id": "msg_x", "webhook-timestamp": "1", "webhook-signature": "v1,AAAA"}


@pytest.fixture()
def rx() -> Iterator[Receiver]:
    receiver = Receiver().start()
    yield receiver
    receiver.stop()


def test_2xx_is_success_and_the_body_is_sent_as_is(rx: Receiver) -> None:
    rx.script("/ok", Reply(204, body=""))
    result = send_webhook(rx.url("/ok"), b'{"a":1}', HEADERS, settings=LAB)
    assert result.ok and result.status_code == 204 and result.error is None and result.latency_ms >= 0
    [got] = rx.received("/ok")
    assert got.body == b'{"a":1}' and got.headers["webhook-id"] == "msg_x"
    assert got.headers["user-agent"].startswith("reelmill-webhooks/")


@pytest.mark.parametrize("status", [199, 301, 302, 304, 400, 404, 429, 500, 503])
def test_anything_but_2xx_fails(rx: Receiver, status: int) -> None:
    rx.script("/x", Reply(status, headers={"Location": rx.url("/elsewhere")}, body="nope"))
    result = send_webhook(rx.url("/x"), b"{}", HEADERS, settings=LAB)
    assert result.ok is (200 <= status < 300)
    assert rx.received("/elsewhere") == []


def test_redirect_is_described_not_followed(rx: Receiver) -> None:
    rx.script("/r", Reply(307, headers={"Location": rx.url("/target")}, body=""))
    result = send_webhook(rx.url("/r"), b"{}", HEADERS, settings=LAB)
    assert result.status_code == 307 and not result.ok
    assert result.excerpt == f"redirect to {rx.url('/target')} (not followed)"
    assert rx.received("/target") == []


def test_excerpt_is_cut_and_retry_after_kept(rx: Receiver) -> None:
    rx.script("/big", Reply(503, headers={"Retry-After": "30"}, body="x" * 100_000))
    result = send_webhook(rx.url("/big"), b"{}", HEADERS, settings=LAB)
    assert result.status_code == 503 and result.excerpt == "x" * EXCERPT_CHARS and result.retry_after == "30"


def test_timeout_is_an_error(rx: Receiver) -> None:
    rx.script("/slow", Reply(200, delay_s=2))
    result = send_webhook(rx.url("/slow"), b"{}", HEADERS, settings=LAB)
    assert result.status_code is None and not result.ok and "Timeout" in (result.error or "")


def test_connection_refused_is_an_error() -> None:
    result = send_webhook(f"http://127.0.0.1:{free_port()}/none", b"{}", HEADERS, settings=LAB)
    assert result.status_code is None and result.error and "ConnectError" in result.error


def test_guard_refusal_sends_nothing(rx: Receiver) -> None:
    strict = Settings(outbound_allow_private=False, outbound_allow_http=True)
    url = f"http://rebound.example.test:{rx.port}/in"  # a name whose DNS answer turned internal
    result = send_webhook(url, b"{}", HEADERS, settings=strict, resolver=lambda h, p: ["127.0.0.1"])
    assert result.refused and result.status_code is None and "loopback" in (result.error or "")
    assert rx.received() == []


def test_loopback_only_keeps_test_traffic_on_the_machine(rx: Receiver) -> None:
    lab = Settings(outbound_allow_private=True, outbound_allow_http=True, webhook_loopback_only=True)

    def no_dns(host: str, port: int) -> list[str]:
        raise AssertionError("no DNS lookup in loopback-only mode")

    for url in ("https://93.184.216.34/hook", "http://10.0.0.1/hook", "http://hooks.example.test/hook"):
        result = send_webhook(url, b"{}", HEADERS, settings=lab, resolver=no_dns)
        assert result.refused and "loopback only" in (result.error or "")
    assert send_webhook(f"http://localhost:{rx.port}/in", b"{}", HEADERS, settings=lab).ok
    assert send_webhook(rx.url("/in"), b"{}", HEADERS, settings=lab).ok
    assert len(rx.received("/in")) == 2


class Tarpit:
    """A receiver that never finishes: it accepts, then sends its answer one byte every ``every_s`` seconds,
    forever (the status line and headers by default, or, with ``status_first``, a 200 whose body trickles)."""

    def __init__(self, every_s: float = 0.4, status_first: bool = False) -> None:
        self.every_s = every_s
        self.status_first = status_first
        self.port = free_port()
        self.stop = threading.Event()
        self.sock = socket.create_server(("127.0.0.1", self.port))
        self.sock.settimeout(0.2)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        with self.sock:
            while not self.stop.is_set():
                try:
                    conn, _ = self.sock.accept()
                except TimeoutError:
                    continue
                threading.Thread(target=self._trickle, args=(conn,), daemon=True).start()

    def _trickle(self, conn: socket.socket) -> None:
        head = b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n" if self.status_first else b""
        with conn:
            try:
                conn.sendall(head or b"H")
                payload = b"x" if self.status_first else b"TTP/1.1 200 OK\r\nX-Slow: " + b"a" * 10_000
                for byte in payload:
                    if self.stop.wait(self.every_s):
                        return
                    conn.sendall(bytes([byte]))
            except OSError:
                return  # the sender hung up: what the test wants

    def close(self) -> None:
        self.stop.set()  # the accept loop sees it within its 0.2 s timeout and closes the socket itself
        self.thread.join(timeout=5)


@pytest.fixture()
def tarpit() -> Iterator[Tarpit]:
    pit = Tarpit()
    yield pit
    pit.close()


def test_a_tarpit_receiver_is_cut_at_the_deadline_of_the_whole_attempt(tarpit: Tarpit) -> None:
    """A byte every 0.4 s would satisfy any per-read timeout forever; the attempt ends at webhook_timeout_s."""
    settings = Settings(outbound_allow_private=True, outbound_allow_http=True, webhook_timeout_s=1.5)
    started = time.monotonic()
    result = send_webhook(f"http://127.0.0.1:{tarpit.port}/hook", b"{}", HEADERS, settings=settings)
    took = time.monotonic() - started
    assert result.status_code is None and not result.ok
    assert "Timeout" in (result.error or "") and "1.5 s" in (result.error or "")
    assert 1.4 <= took < 4.0, took  # the deadline, not the receiver, ended it
    assert 1400 <= result.latency_ms < 4000


def test_a_body_that_trickles_keeps_the_status_and_is_cut_at_the_deadline() -> None:
    pit = Tarpit(status_first=True)
    try:
        settings = Settings(outbound_allow_private=True, outbound_allow_http=True, webhook_timeout_s=1.5)
        started = time.monotonic()
        result = send_webhook(f"http://127.0.0.1:{pit.port}/hook", b"{}", HEADERS, settings=settings)
        assert time.monotonic() - started < 4.0
        assert result.status_code == 200 and result.ok  # the answer arrived in time; only its excerpt is short
        assert (result.excerpt or "").strip("x") == ""
    finally:
        pit.close()


def test_a_dns_lookup_that_hangs_is_cut_at_the_deadline() -> None:
    release = threading.Event()

    def hanging(host: str, port: int) -> list[str]:
        release.wait(30)
        return ["127.0.0.1"]

    settings = Settings(
        outbound_allow_private=True, outbound_allow_http=True, webhook_timeout_s=1.0, webhook_loopback_only=False
    )
    started = time.monotonic()
    try:
        result = send_webhook("http://hooks.example.test/in", b"{}", HEADERS, settings=settings, resolver=hanging)
    finally:
        release.set()
    assert time.monotonic() - started < 3.0
    assert result.status_code is None and "took longer than 1.0 s" in (result.error or "")
