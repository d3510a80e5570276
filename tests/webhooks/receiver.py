"""A real webhook receiver for tests: a threaded HTTP server on 127.0.0.1 that verifies every request with the
`standardwebhooks` package (never with reelmill's own code) and answers from a per-path script.

    rx = Receiver(secrets=[secret]).start()
    rx.script("/hook", Reply(500), Reply(200))   # then the default (200) for anything after
    ... rx.wait_for(lambda r: len(r.received("/hook")) >= 2)
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.utils.net import free_port


@dataclass(frozen=True)
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: str = "ok"
    delay_s: float = 0.0


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    verified_with: list[int]  # indexes (into Receiver.secrets) of the secrets that verify this request

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]

    @property
    def payload(self) -> dict[str, Any]:
        return json.loads(self.body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a sender that hung up early (a timeout, an excerpt read) is part of the tests, not an error


class Receiver:
    def __init__(self, secrets: list[str] | None = None, port: int | None = None) -> None:
        self.secrets = list(secrets or [])
        self.port = port or free_port()
        self.requests: list[Received] = []
        self._scripts: dict[str, deque[Reply]] = defaultdict(deque)
        self._lock = threading.Lock()
        self._server: _Server | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def script(self, path: str, *replies: Reply) -> None:
        with self._lock:
            self._scripts[path].extend(replies)

    def received(self, path: str | None = None) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if path is None or r.path == path]

    def wait_for(self, cond: Callable[[Receiver], bool], timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if cond(self):
                return
            time.sleep(0.05)
        raise AssertionError(f"receiver condition not met in {timeout}s; got {[r.path for r in self.received()]}")

    def start(self) -> Receiver:
        self._server = _Server(("127.0.0.1", self.port), self._handler())
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _verify(self, body: bytes, headers: dict[str, str]) -> list[int]:
        ok = []
        for i, secret in enumerate(self.secrets):
            try:
                Webhook(secret).verify(body, headers)
                ok.append(i)
            except WebhookVerificationError:
                pass
        return ok

    def _take(self, path: str, body: bytes, headers: dict[str, str]) -> Reply:
        with self._lock:
            self.requests.append(Received(path, headers, body, time.monotonic(), self._verify(body, headers)))
            queue = self._scripts.get(path)
            return queue.popleft() if queue else Reply()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                reply = receiver._take(self.path, body, headers)
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                data = reply.body.encode()
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("content-length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the sender gave up (timeout) and closed the connection

            def log_message(self, *args: Any) -> None:
                pass

        return Handler
