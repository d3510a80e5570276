"""A loopback port whose behaviour a test switches: refusing connections (nothing listens), relaying them to a
target port, or swallowing them (accepts, reads, never answers). A worker pointed at it meets, on demand, what a
process on its own cannot arrange: a refused connection, or a request that hangs before it reaches the upstream."""

from __future__ import annotations

import contextlib
import socket
import threading

from tests.utils.net import free_port


class SwitchPort:
    def __init__(self, target_port: int) -> None:
        self.port = free_port()
        self.target_port = target_port
        self.mode = "refuse"
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def refuse(self) -> None:
        """Stop listening and cut every connection: a connect now fails with ECONNREFUSED."""
        with self._lock:
            self.mode = "refuse"
            listener, self._listener = self._listener, None
            conns, self._open = self._open, set()
        if listener is not None:
            _close(listener)
        for conn in conns:
            _close(conn)

    def relay(self) -> None:
        """Listen, and pipe every connection to the target port."""
        self._listen("relay")

    def swallow(self) -> None:
        """Listen, accept, read whatever comes, never answer."""
        self._listen("swallow")

    def _listen(self, mode: str) -> None:
        with self._lock:
            self.mode = mode
            if self._listener is not None:
                return
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", self.port))
            listener.listen(128)
            self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return  # closed by refuse()
            with self._lock:
                self._open.add(conn)
                mode = self.mode
            target = self._connect_target(conn) if mode == "relay" else None
            if target is not None:
                threading.Thread(target=self._pipe, args=(conn, target), daemon=True).start()
                threading.Thread(target=self._pipe, args=(target, conn), daemon=True).start()
            elif mode == "swallow":
                threading.Thread(target=self._drain, args=(conn,), daemon=True).start()

    def _connect_target(self, conn: socket.socket) -> socket.socket | None:
        try:
            target = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
        except OSError:
            _close(conn)
            return None
        target.settimeout(None)
        with self._lock:
            self._open.add(target)
        return target

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while chunk := src.recv(65536):
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            _close(src)
            _close(dst)

    def _drain(self, conn: socket.socket) -> None:
        try:
            while conn.recv(65536):
                pass
        except OSError:
            pass

    def close(self) -> None:
        self.refuse()


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
