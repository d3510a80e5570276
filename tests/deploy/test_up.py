"""`reelmill up`: the port check, the children's environment, the dev key, the signals, and the whole stack
started as a real subprocess, then stopped by SIGINT or by a child dying. (Children dying with a killed supervisor
is tested on small processes in test_supervisor.py.)"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import typer

from services.cli import up
from services.cli.up_banner import dev_switches
from shared.settings import Settings
from tests.deploy.up_runner import BANNER, Up, clean_env, gone
from tests.utils.net import free_port

ROLES = ["redis", "sim", "api", "worker-steps", "worker-streams", "worker-webhooks", "beat", "flower"]


def opts(**changes) -> up.UpOptions:
    base = dict(host="127.0.0.1", port=18000, flower_port=15555, sim_port=18300, sim=True, concurrency=2,
                stream_concurrency=2, stop_timeout=5.0)  # fmt: skip
    return up.UpOptions(**{**base, **changes})


@pytest.fixture()
def listener():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_bind_problem_sees_a_listening_port(listener: int) -> None:
    assert up.bind_problem("127.0.0.1", listener) == f"port {listener} on 127.0.0.1 is already in use"
    assert up.bind_problem("0.0.0.0", listener) is not None  # the wildcard overlaps it too
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    assert up.bind_problem("127.0.0.1", port) is None


def test_check_ports_names_the_flag_to_change(listener: int) -> None:
    problem = up.check_ports(opts(port=free_port(), flower_port=listener, sim_port=free_port()))
    assert problem is not None and f"port {listener}" in problem and "--flower-port" in problem
    assert "must differ" in (up.check_ports(opts(sim_port=18000)) or "")
    without_sim = opts(sim=False, sim_port=listener, port=free_port(), flower_port=free_port())
    assert up.check_ports(without_sim) is None  # the simulator's port only matters with --sim


def test_a_taken_port_exits_2_before_anything_starts(listener: int, tmp_path: Path) -> None:
    data_dir = tmp_path / "never-created"
    argv = [sys.executable, "-m", "services.cli.main", "up", "--sim", "--port", str(listener)]
    result = subprocess.run(argv, env=clean_env(data_dir), capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert f"port {listener} on 127.0.0.1 is already in use" in result.stderr and "--port" in result.stderr
    assert not data_dir.exists()  # no data dir, no Redis, no child


@pytest.fixture()
def bare_env(monkeypatch: pytest.MonkeyPatch):
    """No REELMILL_* setting from the test session: `up` sees what a fresh shell would give it."""
    from shared.db import reset_engine
    from shared.settings import get_settings

    for name in [k for k in os.environ if k.startswith("REELMILL_") or k == "NEMO_TOKEN"]:
        monkeypatch.delenv(name)
    get_settings.cache_clear()
    reset_engine()
    yield monkeypatch
    reset_engine()
    get_settings.cache_clear()


def test_child_env_points_at_the_simulator_and_allows_only_its_address(
    bare_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch = bare_env
    monkeypatch.setenv("REELMILL_RENDER_POLL_S", "7")
    settings = Settings(data_dir=tmp_path)
    env = up.child_env(settings, opts(allow_receivers=("127.0.0.1:9000",)), "pw")
    assert env["REELMILL_NEMO_BASE_URL"] == "http://127.0.0.1:18300"
    assert json.loads(env["REELMILL_OUTBOUND_ALLOW_ADDRESSES"]) == ["127.0.0.1:18300", "127.0.0.1:9000"]
    assert "REELMILL_OUTBOUND_ALLOW_PRIVATE" not in env and "REELMILL_OUTBOUND_ALLOW_HTTP" not in env
    assert env["REELMILL_RENDER_POLL_S"] == "7"  # an explicit setting wins over the sim default
    assert env["REELMILL_SIM_ANONYMOUS_CREDITS"] == "100000"
    assert env["REELMILL_SIM_STATE_FILE"] == str(tmp_path.resolve() / "sim-state.json")
    assert env["REELMILL_FLOWER_PASSWORD"] == "pw" and env["REELMILL_DATA_DIR"] == str(tmp_path.resolve())
    plain = up.child_env(Settings(data_dir=tmp_path, flower_password="mine"), opts(sim=False), "pw")
    assert "REELMILL_OUTBOUND_ALLOW_ADDRESSES" not in plain and "REELMILL_NEMO_BASE_URL" not in plain
    assert "REELMILL_FLOWER_PASSWORD" not in plain  # the configured one reaches the children as it is
    monkeypatch.setenv("REELMILL_OUTBOUND_ALLOW_ADDRESSES", env["REELMILL_OUTBOUND_ALLOW_ADDRESSES"])
    child = Settings()
    assert child.outbound_allow_addresses == ["127.0.0.1:18300", "127.0.0.1:9000"]  # as the children parse it
    assert child.outbound_allow_private is False and child.outbound_allow_http is False


def test_development_switches_are_named(bare_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bare_env.setenv("REELMILL_OUTBOUND_ALLOW_PRIVATE", "true")
    settings = Settings(data_dir=tmp_path)
    child = settings.model_copy(update=up.child_overrides(settings, opts()))
    switches = "\n".join(dev_switches(child))
    assert "NemoVideo replaced by http://127.0.0.1:18300" in switches
    assert "outbound allowed to 127.0.0.1:18300 (REELMILL_OUTBOUND_ALLOW_ADDRESSES)" in switches
    assert "every private address (REELMILL_OUTBOUND_ALLOW_PRIVATE)" in switches  # the user's own, shown too
    assert dev_switches(Settings(data_dir=tmp_path, outbound_allow_private=False)) == []


def test_receivers_must_be_host_port() -> None:
    assert up.parse_receivers(["127.0.0.1:9000", "[::1]:80", "localhost:8080"]) == (
        "127.0.0.1:9000",
        "[::1]:80",
        "localhost:8080",
    )
    for bad in ("127.0.0.1", "http://127.0.0.1:9000", "host:0", "host:99999"):
        with pytest.raises(typer.BadParameter):
            up.parse_receivers([bad])


def test_dev_key_is_stored_private_and_reused(bare_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from shared.db import session_scope
    from shared.domain.tenants import authenticate, revoke_key
    from shared.settings import get_settings

    bare_env.setenv("REELMILL_DATA_DIR", str(tmp_path))
    key = up.prepare_database(get_settings())
    assert (tmp_path / up.DEV_KEY_FILE).read_text().strip() == key
    assert stat.S_IMODE((tmp_path / up.DEV_KEY_FILE).stat().st_mode) == 0o600
    assert up.dev_key(tmp_path) == key
    with session_scope() as session:
        assert authenticate(session, key).name == "dev"
        revoke_key(session, key)
    fresh = up.dev_key(tmp_path)  # a key that no longer works is replaced
    assert fresh != key and (tmp_path / up.DEV_KEY_FILE).read_text().strip() == fresh


def test_signals_stop_first_and_hurry_only_on_a_later_one() -> None:
    stop, hurry = up.SignalEvent(), up.SignalEvent()
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        up.install_signals(stop, hurry)
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.wait(5) and not hurry.is_set()
        os.kill(os.getpid(), signal.SIGINT)  # the same Ctrl-C, forwarded a second time by a wrapper
        time.sleep(0.1)
        assert not hurry.is_set()
        time.sleep(up.HURRY_AFTER_S)
        os.kill(os.getpid(), signal.SIGINT)
        assert hurry.wait(5)
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def test_a_signal_while_the_main_thread_waits_never_deadlocks() -> None:
    """A handler that took the Event's lock while the main thread held it in `wait` hung `reelmill up` for good
    (seen: SIGTERM from `timeout`). Signals now only flag the event."""
    stop, hurry = up.SignalEvent(), up.SignalEvent()
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    kicker = threading.Thread(
        target=lambda: [os.kill(os.getpid(), signal.SIGTERM) or time.sleep(0.001) for _ in range(200)], daemon=True
    )
    try:
        up.install_signals(stop, hurry)
        kicker.start()
        started = time.monotonic()
        while time.monotonic() - started < 2:  # the main thread busy in waits while signals rain in
            stop.wait(0.001)
        kicker.join(timeout=10)
        assert stop.is_set() and not kicker.is_alive()
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


# --- the whole stack ----------------------------------------------------------------------------------------


@pytest.fixture()
def running(tmp_path: Path):
    stack = Up(tmp_path / "data").start()
    try:
        stack.wait_for(BANNER)
        yield stack
    finally:
        stack.kill()


def private(path: Path) -> str:
    return oct(stat.S_IMODE(path.stat().st_mode))


def raw_redis(port: int, command: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(command + b"\r\n")
        return sock.recv(4096).split(b"\r\n")[0]


def check_quiet_terminal(stack: Up) -> None:
    """Children's start-up chatter is in their log files; the terminal ends start-up with the banner."""
    out = stack.output()
    for noise in ("Application startup complete", "celery@", "Visit me at", "superuser privileges", "[tasks]"):
        assert noise not in out, noise
    banner_at = next(i for i, line in enumerate(stack.lines) if BANNER in line)
    assert all(line.startswith("reelmill ") for line in stack.lines[:banner_at] if line.strip())


def check_private_files(data_dir: Path) -> None:
    assert private(data_dir) == "0o700"
    files = [data_dir / n for n in ("reelmill.db", "dev-api-key", "flower-password", "workers.json", "up.lock")]
    files += [data_dir / "redis" / "valkey.conf", data_dir / "redis" / "password", *(data_dir / "logs").iterdir()]
    assert {str(f): private(f) for f in files} == {str(f): "0o600" for f in files}


def check_secrets_stay_out_of_argv(stack: Up, secrets: list[str]) -> None:
    for proc in stack.descendants():
        cmdline = " ".join(proc.cmdline())
        assert not any(s in cmdline for s in secrets), cmdline


@pytest.mark.slow
def test_up_serves_then_sigint_stops_every_child(running: Up) -> None:
    children = running.descendants()
    commands = " ".join(" ".join(p.cmdline()) for p in children)
    for role in (
        "valkey-server",
        " sim ",
        " api ",
        "--queues steps ",
        "--queues streams ",
        "--queues webhooks,artifacts ",
    ):
        assert role in commands + " ", role
    assert httpx.get(f"{running.api}/healthz").status_code == 200
    assert httpx.get(f"{running.api}/readyz").json()["checks"] == {"database": "ok", "redis": "ok"}
    assert httpx.get(f"http://127.0.0.1:{running.sim_port}/_sim/health").status_code == 200
    password = running.banner_value(r"user admin, password (\S+) kept in")
    assert (running.data_dir / "flower-password").read_text().strip() == password
    assert httpx.get(f"{running.flower}/api/workers").status_code == 401
    assert httpx.get(f"{running.flower}/api/workers", auth=("admin", password)).status_code == 200
    key = running.banner_value(r"\n\s+(rm_live_\S+)\n")
    assert (running.data_dir / up.DEV_KEY_FILE).read_text().strip() == key
    assert "100,000 anonymous credits" in running.output()

    redis_password = (running.data_dir / "redis" / "password").read_text().strip()
    redis_port = int(re.search(r"^port (\d+)$", (running.data_dir / "redis" / "valkey.conf").read_text(), re.M)[1])
    assert raw_redis(redis_port, b"PING").startswith(b"-NOAUTH")  # the broker refuses a local intruder
    check_secrets_stay_out_of_argv(running, [redis_password, password, key])
    check_quiet_terminal(running)
    check_private_files(running.data_dir)

    running.signal(signal.SIGINT)
    assert running.wait(60) == 0
    assert gone(children) == []
    assert "all stopped" in running.output() and "did not stop in time" not in running.output()
    logs = running.data_dir / "logs"
    assert sorted(p.name for p in logs.iterdir()) == sorted(f"{role}.log" for role in ROLES)
    assert "Application startup complete" in (logs / "api.log").read_text()  # the sim logs only warnings
    everything = "".join(p.read_text() for p in logs.iterdir())
    assert not any(s in everything for s in (key, password, redis_password))


@pytest.mark.slow
def test_one_up_per_data_dir_and_keys_find_the_running_one(running: Up, tmp_path: Path) -> None:
    second = Up(running.data_dir).start()
    assert second.wait(60) == 2
    assert f"another `reelmill up` (pid {running.proc.pid}) is running on {running.data_dir}" in second.output()

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = clean_env(None, XDG_STATE_HOME=str(running.data_dir.parent / "xdg-state"))
    cli = [sys.executable, "-m", "services.cli.main", "keys"]
    listed = subprocess.run([*cli, "list"], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert f"the running `reelmill up`, data dir {running.data_dir}" in listed.stderr
    assert " dev " in listed.stdout and "active" in listed.stdout
    made = subprocess.run([*cli, "create", "--tenant", "elsewhere"], cwd=elsewhere, env=env, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert made.returncode == 0, made.stderr
    new_key = made.stdout.strip()
    assert httpx.get(f"{running.api}/v1/jobs", headers={"Authorization": f"Bearer {new_key}"}).status_code == 200
    assert not (elsewhere / ".reelmill").exists()  # no stray database where the command ran


@pytest.mark.slow
def test_a_child_that_dies_is_started_again(running: Up) -> None:
    """As compose's restart policy would: the others go on, the new worker's pid is recorded for the next `up`."""
    beat, steps = running.child(" beat"), running.child("--queues steps ")
    beat.kill()
    steps.kill()
    running.wait_for("beat started again")
    running.wait_for("worker-steps started again")
    out = running.output()
    assert "beat exited unexpectedly (killed by SIGKILL); its log: " in out
    assert "logs/beat.log; starting it again in 1 s" in out
    assert running.child(" beat").pid != beat.pid
    new_steps = running.child("--queues steps ")
    assert new_steps.pid != steps.pid
    recorded = {w["pid"] for w in json.loads((running.data_dir / "workers.json").read_text())}
    assert new_steps.pid in recorded and steps.pid not in recorded
    assert httpx.get(f"{running.api}/readyz").json()["checks"] == {"database": "ok", "redis": "ok"}
    children = running.descendants()
    running.signal(signal.SIGINT)
    assert running.wait(60) == 0
    assert gone(children) == []
