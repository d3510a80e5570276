"""`python -m tests.api.hanging_dns api ...`: reelmill's CLI in a process whose DNS never answers.

`socket.getaddrinfo` is replaced before reelmill is imported: an IP literal is passed through (the database,
Redis and the listening socket are all 127.0.0.1), a host name hangs forever, as behind a name server that has
gone silent, and is written to the file named by `REELMILL_TEST_DNS_LOG` first. (A stand-in, because no test may
make a real name server misbehave.)
"""

from __future__ import annotations

import ipaddress
import os
import socket
import threading

_real_getaddrinfo = socket.getaddrinfo
_never = threading.Event()


def _is_literal(host: object) -> bool:
    if host is None:
        return True
    text = host.decode() if isinstance(host, bytes) else str(host)
    try:
        ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return False
    return True


def hanging_getaddrinfo(host, *args, **kwargs):  # type: ignore[no-untyped-def]
    if _is_literal(host):
        return _real_getaddrinfo(host, *args, **kwargs)
    with open(os.environ["REELMILL_TEST_DNS_LOG"], "a") as log:
        log.write(f"{host}\n")
    _never.wait()
    raise OSError("unreachable")


socket.getaddrinfo = hanging_getaddrinfo

if __name__ == "__main__":
    from services.cli.main import app

    app()
