"""`reelmill up`: the whole service on one machine, as children of one supervisor.

Start order: embedded Redis (unless REELMILL_REDIS_URL is set), migrations and the dev key (in this process), the
simulator (--sim), the API, both workers, beat, Flower. Stop order: the API first (no new jobs), beat (no new
sweeps), the workers (warm shutdown: running steps finish), Flower, the simulator, Redis last.
"""

from __future__ import annotations

import errno
import os
import secrets
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import typer

from services.cli.supervisor import Child, ChildSpec, Supervisor, describe_exit
from shared import embedded_redis
from shared.settings import Settings, get_settings

STOP_STAGES = [["api"], ["beat"], ["worker-steps", "worker-streams"], ["flower"], ["sim"], ["redis"]]
DEV_TENANT = "dev"
DEV_KEY_FILE = "dev-api-key"
START_TIMEOUT_S = 120.0
SIM_TIME_SCALE = "0.05"
SIM_RENDER_POLL_S = "2"
HURRY_AFTER_S = 1.0


@dataclass(frozen=True)
class UpOptions:
    host: str
    port: int
    flower_port: int
    sim_port: int
    sim: bool
    concurrency: int
    stream_concurrency: int
    stop_timeout: float


class StartFailed(Exception):
    """reelmill up could not bring everything up; the message says what and why."""


class StopRequested(Exception):
    """Ctrl-C (or SIGTERM) arrived while still starting."""


# --- before anything starts --------------------------------------------------------------------------------


def bind_problem(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be listened on (taken, not a local address, privileged), or None if it can."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        return f"cannot resolve host {host!r}: {exc.strerror}"
    for family, kind, proto, _, addr in infos:
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do: TIME_WAIT is not "taken"
            try:
                sock.bind(addr)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    return f"port {port} on {host} is already in use"
                return f"cannot listen on {host}:{port}: {exc.strerror}"
    return None


def check_ports(opts: UpOptions) -> str | None:
    wanted = [("API", "--port", opts.host, opts.port), ("Flower", "--flower-port", opts.host, opts.flower_port)]
    if opts.sim:
        wanted.append(("simulator", "--sim-port", "127.0.0.1", opts.sim_port))
    ports = [port for *_, port in wanted]
    if len(set(ports)) != len(ports):
        return f"the API, Flower and simulator ports must differ (got {', '.join(map(str, ports))})"
    for what, flag, host, port in wanted:
        problem = bind_problem(host, port)
        if problem:
            return f"{problem} (wanted for the {what}); choose another with {flag}"
    return None


# --- the children ------------------------------------------------------------------------------------------


def local_host(host: str) -> str:
    """Where to reach a server bound to ``host`` from this machine."""
    return {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)


def http_url(host: str, port: int) -> str:
    host = local_host(host)
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def child_env(settings: Settings, opts: UpOptions, flower_password: str) -> dict[str, str]:
    """The children's environment: ours, plus what makes them one service on this machine."""
    env = dict(os.environ)
    env["REELMILL_DATA_DIR"] = str(settings.data_dir.resolve())
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("REELMILL_LOG_JSON", "false")  # a terminal reads text; set it to true for JSON lines
    env.setdefault("REELMILL_PUBLIC_URL", http_url(opts.host, opts.port))
    if settings.flower_password is None:
        env["REELMILL_FLOWER_PASSWORD"] = flower_password
    if opts.sim:
        env["REELMILL_NEMO_BASE_URL"] = http_url("127.0.0.1", opts.sim_port)
        env["REELMILL_OUTBOUND_ALLOW_PRIVATE"] = "true"
        env["REELMILL_OUTBOUND_ALLOW_HTTP"] = "true"
        env.setdefault("REELMILL_RENDER_POLL_S", SIM_RENDER_POLL_S)
        env.setdefault("REELMILL_SIM_TIME_SCALE", SIM_TIME_SCALE)
    return env


def reelmill(*args: str) -> list[str]:
    return [sys.executable, "-m", "services.cli.main", *args]


def app_specs(opts: UpOptions) -> list[ChildSpec]:
    """Every role after Redis, in start order."""
    specs = []
    if opts.sim:
        specs.append(ChildSpec("sim", reelmill("sim", "--host", "127.0.0.1", "--port", str(opts.sim_port))))
    worker_stop = opts.stop_timeout
    specs += [
        ChildSpec("api", reelmill("api", "--host", opts.host, "--port", str(opts.port))),
        ChildSpec(
            "worker-steps",
            reelmill("worker", "--queues", "steps,webhooks,artifacts", "--concurrency", str(opts.concurrency)),
            stop_timeout=worker_stop,
        ),
        ChildSpec(
            "worker-streams",
            reelmill("worker", "--queues", "streams", "--concurrency", str(opts.stream_concurrency)),
            stop_timeout=worker_stop,
        ),
        ChildSpec("beat", reelmill("beat")),
        ChildSpec("flower", reelmill("flower", "--host", opts.host, "--port", str(opts.flower_port))),
    ]
    return specs


# --- waiting -----------------------------------------------------------------------------------------------


def tcp_answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((local_host(host), port), timeout=1):
            return True
    except OSError:
        return False


def wait_ready(sup: Supervisor, child: Child, check: Callable[[], bool], stop: threading.Event) -> None:
    """Until ``check()`` passes; StartFailed if a child died or the wait timed out, StopRequested on a signal."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while not check():
        dead = sup.first_dead()
        if dead is not None:
            raise StartFailed(f"{dead.role} exited during start-up ({describe_exit(dead.reap())})")
        if stop.is_set():
            raise StopRequested
        if time.monotonic() > deadline:
            raise StartFailed(f"{child.role} was not ready within {START_TIMEOUT_S:.0f} s")
        time.sleep(0.1)


def start_redis(sup: Supervisor, workdir: Path, stop: threading.Event) -> str:
    port = embedded_redis.free_port()
    url = embedded_redis.url_for(port)
    child = sup.start(ChildSpec("redis", embedded_redis.server_argv(port, workdir=workdir)))
    wait_ready(sup, child, lambda: embedded_redis.ping(url), stop)
    return url


def start_apps(sup: Supervisor, opts: UpOptions, stop: threading.Event) -> None:
    checks: dict[str, Callable[[], bool]] = {
        "sim": lambda: tcp_answers("127.0.0.1", opts.sim_port),
        "api": lambda: tcp_answers(opts.host, opts.port),
        "flower": lambda: tcp_answers(opts.host, opts.flower_port),
    }
    started = [sup.start(spec) for spec in app_specs(opts)]
    for child in started:
        if child.role in checks:
            wait_ready(sup, child, checks[child.role], stop)


# --- the database and the dev key --------------------------------------------------------------------------


def write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text + "\n")
    path.chmod(0o600)  # in case it existed with a wider mode


def dev_key(data_dir: Path) -> str:
    """The stored dev key if it still authenticates against this database, else a new one (stored 0600)."""
    from shared.db import session_scope
    from shared.domain.errors import Unauthorized
    from shared.domain.tenants import authenticate, create_key

    path = data_dir / DEV_KEY_FILE
    stored = path.read_text().strip() if path.is_file() else ""
    if stored:
        try:
            with session_scope() as session:
                authenticate(session, stored)
            path.chmod(0o600)
            return stored
        except Unauthorized:
            pass
    with session_scope() as session:
        key = create_key(session, DEV_TENANT).key
    write_private(path, key)
    return key


def prepare_database(settings: Settings) -> str:
    """Migrate to head and return the dev key; the engine is dropped after (the children build their own)."""
    from shared.db import reset_engine
    from shared.db.migrate import upgrade_head
    from shared.logs import redact

    try:
        upgrade_head(settings.effective_database_url)
        return dev_key(settings.data_dir)
    except Exception as exc:
        raise StartFailed(f"database not ready: {type(exc).__name__}: {redact(str(exc))[:300]}") from None
    finally:
        reset_engine()


# --- the command -------------------------------------------------------------------------------------------


def banner(opts: UpOptions, settings: Settings, key: str, flower_password: str) -> list[str]:
    api = http_url(opts.host, opts.port)
    if settings.flower_password is None:
        auth = f"user {settings.flower_user}, password {flower_password}"
    else:
        auth = f"user {settings.flower_user}, password from REELMILL_FLOWER_PASSWORD"
    lines = [
        "reelmill is up. Ctrl-C stops everything (press it again to stop waiting for running steps).",
        f"  API docs   {api}/docs",
        f"  Flower     {http_url(opts.host, opts.flower_port)}/  ({auth})",
    ]
    if opts.sim:
        lines.append(f"  simulator  {http_url('127.0.0.1', opts.sim_port)}  (stands in for NemoVideo)")
    lines += [
        f"  logs       {settings.data_dir.resolve() / 'logs'}/<role>.log",
        f"  dev API key (tenant '{DEV_TENANT}', kept in {settings.data_dir / DEV_KEY_FILE}):",
        f"    {key}",
        "  try:",
        f"    curl -s {api}/v1/jobs -H 'Authorization: Bearer {key}' \\",
        "      -H 'Content-Type: application/json' -d '{\"prompt\": \"a paper boat sailing down a rainy street\"}'",
        f"    curl -s {api}/v1/jobs -H 'Authorization: Bearer {key}'",
        f"  or: REELMILL_API_URL={api} REELMILL_API_KEY={key} \\",
        "        reelmill submit 'a paper boat sailing down a rainy street' --wait",
    ]
    return lines


def install_signals(stop: threading.Event, hurry: threading.Event) -> None:
    """First SIGINT/SIGTERM/SIGHUP: stop in order. Another one a second later: kill what is still running.
    (One Ctrl-C can arrive twice: from the terminal and forwarded by a wrapper such as `uv run`.)"""
    first: list[float] = []

    def handler(signum: int, _frame: object) -> None:
        now = time.monotonic()
        if not first:
            first.append(now)
        elif now - first[0] > HURRY_AFTER_S:
            hurry.set()
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, handler)


def run(opts: UpOptions, settings: Settings, sup: Supervisor, stop: threading.Event) -> int:
    """Start everything, then watch: 0 when asked to stop, 1 when a child died."""
    flower_password = sup.env.get("REELMILL_FLOWER_PASSWORD", "")
    if not settings.redis_url:
        sup.env["REELMILL_REDIS_URL"] = start_redis(sup, settings.data_dir.resolve(), stop)
    key = prepare_database(settings)
    start_apps(sup, opts, stop)
    sup.announce(banner(opts, settings, key, flower_password))
    while not stop.wait(0.2):
        dead = sup.first_dead()
        if dead is not None:
            sup.say("reelmill", f"{dead.role} exited unexpectedly ({describe_exit(dead.reap())}); stopping everything")
            return 1
    sup.say("reelmill", "stopping: api, beat, workers (warm), flower, sim, redis")
    return 0


def up(
    sim: bool = typer.Option(False, "--sim", help="Also run the NemoVideo simulator and point the workers at it."),
    host: str = typer.Option("127.0.0.1", help="Interface the API and Flower listen on."),
    port: int = typer.Option(8000, help="API port."),
    flower_port: int = typer.Option(5555, help="Flower port."),
    sim_port: int = typer.Option(8300, help="Simulator port (loopback only)."),
    concurrency: int = typer.Option(20, help="Threads of the steps+webhooks worker."),
    stream_concurrency: int = typer.Option(50, help="Threads of the streams worker (one per open SSE stream)."),
    stop_timeout: float = typer.Option(30.0, help="Seconds a worker may take to finish its steps on Ctrl-C."),
) -> None:
    """Run the whole service here: API, workers, beat, Flower (+ Redis, + simulator). Ctrl-C stops it all."""
    opts = UpOptions(host, port, flower_port, sim_port, sim, concurrency, stream_concurrency, stop_timeout)
    problem = check_ports(opts)
    if problem:
        typer.echo(f"reelmill up: {problem}", err=True)
        raise typer.Exit(2)
    raise typer.Exit(supervise(opts, get_settings()))


def supervise(opts: UpOptions, settings: Settings) -> int:
    if settings.redis_url and not embedded_redis.ping(settings.redis_url):
        typer.echo("reelmill up: REELMILL_REDIS_URL is set but its server does not answer PING", err=True)
        return 1
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    stop, hurry = threading.Event(), threading.Event()
    install_signals(stop, hurry)
    sup = Supervisor(settings.data_dir / "logs", child_env(settings, opts, secrets.token_urlsafe(12)))
    code = 1
    try:
        code = run(opts, settings, sup, stop)
    except StartFailed as exc:
        sup.say("reelmill", f"could not start: {exc}; stopping everything")
    except StopRequested:
        code = 0
        sup.say("reelmill", "stopping before start-up finished")
    finally:
        sup.stop(STOP_STAGES, hurry)
        sup.say("reelmill", "all stopped" if code == 0 else f"stopped (exit {code})")
    return code
