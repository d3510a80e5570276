"""A tiny loopback HTTP/1.1 server whose replies a test scripts chunk by chunk, with pauses.

For what the simulator should not be asked to do: stay silent mid-stream (idle), stream past a short cap,
answer with odd content types or bodies. Bodies go out chunked, so ``complete=False`` (no final chunk, then
a closed socket) is a real dropped stream, not a clean end.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})
    chunks: list[tuple[float, bytes]] = field(default_factory=list)  # (pause before, bytes)
    complete: bool = True


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class ScriptedServer:
    def __init__(self) -> None:
        self.replies: dict[tuple[str, str], Reply] = {}
        self.seen: list[Seen] = []
        self.stop = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path = self.path.split("?")[0]
                server.seen.append(Seen(self.command, self.path, dict(self.headers), body))
                reply = server.replies.get((self.command, path), Reply(404, chunks=[(0, b'{"detail":"Not Found"}')]))
                server.write(self, reply)

            do_GET = do_POST = _handle

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)

    def route(self, method: str, path: str, reply: Reply) -> None:
        self.replies[(method, path)] = reply

    def write(self, handler: BaseHTTPRequestHandler, reply: Reply) -> None:
        handler.send_response(reply.status)
        for name, value in reply.headers.items():
            handler.send_header(name, value)
        handler.send_header("Transfer-Encoding", "chunked")
        handler.send_header("Connection", "close")  # one request per connection: no keep-alive reuse race
        handler.end_headers()
        try:
            for pause, data in reply.chunks:
                if self.stop.wait(pause):
                    return
                handler.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                handler.wfile.flush()
            if reply.complete:
                handler.wfile.write(b"0\r\n\r\n")
        except OSError:
            return  # the client went away (idle or cap): fine
        finally:
            handler.close_connection = True

    def __enter__(self) -> ScriptedServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def sse_reply(*chunks: tuple[float, str], complete: bool = True) -> Reply:
    return Reply(200, {"Content-Type": "text/event-stream"}, [(p, c.encode()) for p, c in chunks], complete)
