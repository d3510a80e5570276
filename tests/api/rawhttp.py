"""HTTP/1.1 by hand over a socket, for what a client library will not send: a Content-Length the body never
reaches, a chunked body that goes on while the answer comes back, raw bytes in a header."""

from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float  # from the first byte sent to the answer read

    def json(self) -> Any:
        return json.loads(self.body)


def request(
    base_url: str,
    method: str,
    path: str,
    headers: dict[str, str | bytes],
    body: bytes = b"",
    chunks: list[bytes] | None = None,
    timeout: float = 15.0,
) -> Answer:
    """Send the request line, ``headers`` and ``body`` (or ``chunks`` with chunked encoding, until the server stops
    reading), then read the answer. The server must answer within ``timeout`` seconds."""
    parts = urlsplit(base_url)
    started = time.monotonic()
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as sock:
        head = f"{method} {path} HTTP/1.1\r\n".encode() + f"Host: {parts.hostname}:{parts.port}\r\n".encode()
        for name, value in headers.items():
            head += name.encode() + b": " + (value if isinstance(value, bytes) else value.encode("latin-1")) + b"\r\n"
        if chunks is not None:
            head += b"Transfer-Encoding: chunked\r\n"
        elif not any(name.lower() == "content-length" for name in headers):
            head += f"Content-Length: {len(body)}\r\n".encode()
        try:
            sock.sendall(head + b"\r\n" + body)
            for chunk in chunks or []:
                sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        except OSError:
            pass  # the server answered and closed without reading the rest: read its answer
        raw = _read_answer(sock)
    return _parse(raw, time.monotonic() - started)


def _read_answer(sock: socket.socket) -> bytes:
    data = b""
    while True:
        try:
            piece = sock.recv(65536)
        except ConnectionResetError:
            break
        if not piece:
            break
        data += piece
        if b"\r\n\r\n" in data:
            head, _, rest = data.partition(b"\r\n\r\n")
            length = next(
                (
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ),
                None,
            )
            if length is not None and len(rest) >= length:
                break
    return data


def _parse(raw: bytes, seconds: float) -> Answer:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Answer(status, headers, body, seconds)
