"""shared/embedded_redis.py against the real packaged valkey-server."""

from __future__ import annotations

import os
import socket
import subprocess

import psutil
import pytest
import redis

from shared import embedded_redis
from shared.embedded_redis import EmbeddedRedis, EmbeddedRedisError


def test_the_packaged_binary_is_found_and_runs() -> None:
    binary = embedded_redis.server_binary()
    assert os.access(binary, os.X_OK)
    out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=10)
    assert "Valkey server" in out.stdout


def test_start_ping_use_stop_leaves_no_process() -> None:
    server = EmbeddedRedis().start()
    pid = server.pid
    assert pid is not None and psutil.pid_exists(pid)
    try:
        assert server.ping()
        client = redis.Redis.from_url(server.url)
        client.rpush("steps", "a", "b")
        assert client.llen("steps") == 2
        assert client.config_get("save") == {"save": ""}  # memory only: no RDB, no AOF
        assert client.config_get("appendonly") == {"appendonly": "no"}
        assert client.config_get("bind")["bind"] == "127.0.0.1"
        client.close()
    finally:
        code = server.stop()
    assert code == 0  # a clean shutdown on SIGTERM
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert not embedded_redis.ping(embedded_redis.url_for(server.port))


def test_a_given_port_is_used_and_the_context_manager_stops_it() -> None:
    port = embedded_redis.free_port()
    with EmbeddedRedis(port=port) as server:
        assert server.url == f"redis://127.0.0.1:{port}/0"
        assert embedded_redis.ping(server.url)
        pid = server.pid
    assert server.pid is None
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_a_taken_port_fails_fast_and_leaves_nothing() -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        before = {p.pid for p in psutil.Process().children()}
        with pytest.raises(EmbeddedRedisError, match="exited with code"):
            EmbeddedRedis(port=port).start(timeout=10)
        assert {p.pid for p in psutil.Process().children()} <= before


def test_stop_without_start_is_harmless() -> None:
    assert EmbeddedRedis().stop() is None
    with pytest.raises(EmbeddedRedisError):
        _ = EmbeddedRedis().url
