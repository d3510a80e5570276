"""shared/embedded_redis.py against the real packaged valkey-server: locked down (a password, dangerous commands
gone, nothing secret in its command line or readable by others) and persistent when given a directory."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
from pathlib import Path

import psutil
import pytest
import redis

from shared import embedded_redis
from shared.embedded_redis import DISABLED_COMMANDS, EmbeddedRedis, EmbeddedRedisError


def raw(port: int, command: bytes) -> bytes:
    """Send one inline command with no credentials, as an intruder would; the server's first reply line."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(command + b"\r\n")
        return sock.recv(4096).split(b"\r\n")[0]


def test_the_packaged_binary_is_found_and_runs() -> None:
    binary = embedded_redis.server_binary()
    assert os.access(binary, os.X_OK)
    out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=10)
    assert "Valkey server" in out.stdout


def test_commands_without_the_password_are_refused() -> None:
    with EmbeddedRedis() as server:
        for attack in (b"PING", b"SET stolen 1", b"LPUSH steps x", b"GET anything"):
            assert raw(server.port, attack).startswith(b"-NOAUTH"), attack
        for attack in (b"FLUSHALL", b"CONFIG SET requirepass mine"):  # gone altogether
            assert raw(server.port, attack).startswith((b"-NOAUTH", b"-ERR unknown command")), attack
        assert raw(server.port, b"AUTH wrong-password").startswith(b"-WRONGPASS")
        client = redis.Redis.from_url(server.url)
        assert client.ping() and client.dbsize() == 0  # nothing the intruder sent landed
        client.close()


def test_dangerous_commands_are_gone_even_with_the_password() -> None:
    with EmbeddedRedis() as server:
        client = redis.Redis.from_url(server.url)
        client.rpush("steps", "a", "b")
        for command in (
            "FLUSHALL",
            "FLUSHDB",
            "CONFIG GET requirepass",
            "DEBUG SLEEP 0",
            "SHUTDOWN",
            "KEYS *",
            "ACL LIST",
        ):
            with pytest.raises(redis.ResponseError, match="unknown command"):
                client.execute_command(*command.split())
        assert client.llen("steps") == 2  # still there: nothing was flushed
        client.close()
    assert {"FLUSHALL", "FLUSHDB", "CONFIG", "DEBUG", "SHUTDOWN", "KEYS", "ACL"} <= set(DISABLED_COMMANDS)


def test_the_password_is_in_no_command_line_and_its_files_are_private(tmp_path: Path) -> None:
    with EmbeddedRedis(workdir=tmp_path / "redis", password='p,a:s"s w\\d') as server:
        cmdline = " ".join(psutil.Process(server.pid).cmdline())
        assert server.password not in cmdline and "requirepass" not in cmdline
        assert redis.Redis.from_url(server.url).ping()  # any character works: the URL quotes it
        assert stat.S_IMODE((tmp_path / "redis").stat().st_mode) == 0o700
        assert stat.S_IMODE((tmp_path / "redis" / "valkey.conf").stat().st_mode) == 0o600


def test_data_survives_a_restart_in_the_same_directory(tmp_path: Path) -> None:
    workdir = tmp_path / "redis"
    with EmbeddedRedis(workdir=workdir, password="pw") as server:
        client = redis.Redis.from_url(server.url)
        client.rpush("steps", "queued-task")
        client.hset("unacked", "tag", "in-flight")
        client.close()
    with EmbeddedRedis(workdir=workdir, password="pw") as again:
        client = redis.Redis.from_url(again.url)
        assert client.lrange("steps", 0, -1) == [b"queued-task"]
        assert client.hget("unacked", "tag") == b"in-flight"
        client.close()


def test_memory_only_without_a_directory_and_stop_leaves_no_process() -> None:
    server = EmbeddedRedis().start()
    pid, port = server.pid, server.port
    assert pid is not None and psutil.pid_exists(pid)
    try:
        client = redis.Redis.from_url(server.url)
        assert client.execute_command("INFO", "persistence")["aof_enabled"] == 0
        client.close()
    finally:
        code = server.stop()
    assert code == 0  # a clean shutdown on SIGTERM
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert not embedded_redis.ping(embedded_redis.url_for(port, password=server.password))


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
