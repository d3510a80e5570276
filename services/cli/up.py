"""`reelmill up`: the whole service on one machine, as children of one supervisor.

Start order: the data dir (0700, locked: one `up` per data dir), the embedded Redis (unless REELMILL_REDIS_URL is
set: password, persistence in the data dir), migrations and the dev key (in this process), recovery of what the
last run left (services/cli/recover.py), the simulator (--sim), the API, the three workers (steps, streams,
webhooks), beat, Flower; then the banner, then one line per job event. Children's output goes to
`<data_dir>/logs/<role>.log` (errors are also shown). A child that dies is started again (services/cli/restarts.py).
Stop order: the API first (no new jobs), beat (no new sweeps),
the workers (warm shutdown: running steps finish), Flower, the simulator, Redis last (it saves its data).
"""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer

from services.cli import datadir, recover
from services.cli.restarts import RestartPolicy, Restarts, explain_death, keep_running
from services.cli.supervisor import Child, ChildSpec, Supervisor
from services.cli.up_banner import Shown, banner, cli_invocation, dev_switches
from services.cli.up_events import EventTail
from shared import embedded_redis
from shared.settings import Settings, get_settings

STOP_STAGES = [
    ["api"],
    ["beat"],
    ["worker-steps", "worker-streams", "worker-webhooks"],
    ["flower"],
    ["sim"],
    ["redis"],
]
WORKERS = ("worker-steps", "worker-streams", "worker-webhooks")
DEV_TENANT = "dev"
DEV_KEY_FILE = datadir.DEV_KEY_FILE
START_TIMEOUT_S = 120.0
SIM_TIME_SCALE = "0.05"
SIM_RENDER_POLL_S = 2.0
SIM_ANONYMOUS_CREDITS = 100_000
HURRY_AFTER_S = 1.0
RESTARTS = RestartPolicy()  # a child that dies is started again; five deaths of one role in 2 min stop `up`
ADDRESS = re.compile(r"^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.\-]+):(\d{1,5})$")
IMPORTANT = re.compile(r'^\S+ (ERROR|CRITICAL) |"level": "(ERROR|CRITICAL)"')


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
    webhook_concurrency: int = 10
    allow_receivers: tuple[str, ...] = field(default_factory=tuple)


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


def child_overrides(settings: Settings, opts: UpOptions) -> dict[str, Any]:
    """Settings `up` changes for its children. With --sim: NemoVideo is the simulator, and outbound requests may
    reach exactly the simulator's address (and the receivers given with --allow-receiver), not every private one."""
    extra = [f"127.0.0.1:{opts.sim_port}"] if opts.sim else []
    extra += list(opts.allow_receivers)
    changes: dict[str, Any] = {}
    if extra:
        changes["outbound_allow_addresses"] = list(dict.fromkeys([*settings.outbound_allow_addresses, *extra]))
    if opts.sim:
        changes["nemo_base_url"] = http_url("127.0.0.1", opts.sim_port)
        if "render_poll_s" not in settings.model_fields_set:
            changes["render_poll_s"] = SIM_RENDER_POLL_S
    return changes


def child_env(settings: Settings, opts: UpOptions, flower_password: str | None) -> dict[str, str]:
    """The children's environment: ours, plus what makes them one service on this machine. Secrets travel here,
    never in a command line."""
    env = dict(os.environ)
    data_dir = settings.data_dir.resolve()
    env["REELMILL_DATA_DIR"] = str(data_dir)
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("REELMILL_LOG_JSON", "false")  # a person reads the log files; set it to true for JSON lines
    env.setdefault("REELMILL_PUBLIC_URL", http_url(opts.host, opts.port))
    if settings.flower_password is None and flower_password is not None:
        env["REELMILL_FLOWER_PASSWORD"] = flower_password
    for name, value in child_overrides(settings, opts).items():
        env[f"REELMILL_{name.upper()}"] = json.dumps(value) if isinstance(value, list) else str(value)
    if opts.sim:
        env.setdefault("REELMILL_SIM_TIME_SCALE", SIM_TIME_SCALE)
        env.setdefault("REELMILL_SIM_ANONYMOUS_CREDITS", str(SIM_ANONYMOUS_CREDITS))
        env.setdefault("REELMILL_SIM_STATE_FILE", str(data_dir / datadir.SIM_STATE_FILE))
    return env


def reelmill(*args: str) -> list[str]:
    return [sys.executable, "-m", "services.cli.main", *args]


def worker_spec(role: str, queues: str, concurrency: int, stop_timeout: float) -> ChildSpec:
    argv = reelmill("worker", "--queues", queues, "--concurrency", str(concurrency))
    return ChildSpec(role, argv, stop_timeout=stop_timeout)


def app_specs(opts: UpOptions) -> list[ChildSpec]:
    """Every role after Redis, in start order. Webhook deliveries have a worker of their own, so a slow receiver
    never holds a thread a job step needs."""
    specs = []
    if opts.sim:
        specs.append(ChildSpec("sim", reelmill("sim", "--host", "127.0.0.1", "--port", str(opts.sim_port))))
    specs += [
        ChildSpec("api", reelmill("api", "--host", opts.host, "--port", str(opts.port))),
        worker_spec("worker-steps", "steps", opts.concurrency, opts.stop_timeout),
        worker_spec("worker-streams", "streams", opts.stream_concurrency, opts.stop_timeout),
        # webhook deliveries and artifact copies: neither ever holds a job step's thread
        worker_spec("worker-webhooks", "webhooks,artifacts", opts.webhook_concurrency, opts.stop_timeout),
        ChildSpec("beat", reelmill("beat")),
        ChildSpec("flower", reelmill("flower", "--host", opts.host, "--port", str(opts.flower_port))),
    ]
    return specs


def important(role: str, line: str) -> bool:
    """Child lines worth the terminal: errors. The rest is in the role's log file."""
    return bool(IMPORTANT.search(line))


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
            raise StartFailed(explain_death(sup, dead.role, "during start-up"))
        if stop.is_set():
            raise StopRequested
        if time.monotonic() > deadline:
            raise StartFailed(f"{child.role} was not ready within {START_TIMEOUT_S:.0f} s")
        time.sleep(0.1)


def start_redis(sup: Supervisor, data_dir: Path, password: str, stop: threading.Event) -> str:
    """The embedded broker: config (with the password) 0600 in <data_dir>/redis, data kept there too. Returns its
    URL, without the password."""
    port = embedded_redis.free_port()
    workdir = data_dir / datadir.REDIS_DIR
    config = embedded_redis.write_config(workdir / "valkey.conf", port, password, workdir=workdir)
    child = sup.start(ChildSpec("redis", embedded_redis.server_argv(config)))
    wait_ready(sup, child, lambda: embedded_redis.ping(embedded_redis.url_for(port, password=password)), stop)
    return embedded_redis.url_for(port)


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


def dev_key(data_dir: Path) -> str:
    """The stored dev key if it still authenticates against this database, else a new one (stored 0600)."""
    from shared.db import session_scope
    from shared.domain.errors import Unauthorized
    from shared.domain.tenants import authenticate, create_key
    from shared.private_files import read_private, write_private

    path = data_dir / DEV_KEY_FILE
    stored = read_private(path)
    if stored:
        try:
            with session_scope() as session:
                authenticate(session, stored)
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


class SignalEvent(threading.Event):
    """An Event that a signal handler may set. A handler runs in the main thread between two bytecodes, maybe
    while that thread holds the Event's own lock (inside `wait`): calling `set()` there deadlocks. The handler
    only flags it (`flag()`, no lock); whoever waits on it notices within POLL_S and sets it for real."""

    POLL_S = 0.1

    def __init__(self) -> None:
        super().__init__()
        self.flagged = False

    def flag(self) -> None:
        self.flagged = True

    def is_set(self) -> bool:
        if self.flagged and not super().is_set():
            super().set()
        return super().is_set()

    def wait(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.is_set():
            left = self.POLL_S if deadline is None else min(self.POLL_S, deadline - time.monotonic())
            if left <= 0:
                return False
            super().wait(left)
        return True


def install_signals(stop: SignalEvent, hurry: SignalEvent) -> None:
    """First SIGINT/SIGTERM/SIGHUP: stop in order. Another one a second later: kill what is still running.
    (One Ctrl-C can arrive twice: from the terminal and forwarded by a wrapper such as `uv run`.)"""
    first: list[float] = []

    def handler(signum: int, _frame: object) -> None:
        now = time.monotonic()
        if not first:
            first.append(now)
        elif now - first[0] > HURRY_AFTER_S:
            hurry.flag()
        stop.flag()

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, handler)


@dataclass
class Run:
    """One `up`: its options, settings, data dir, supervisor and stop event."""

    opts: UpOptions
    settings: Settings
    data_dir: Path
    sup: Supervisor
    stop: threading.Event
    broker_settings: Settings | None = None  # the settings that reach the broker the children use

    def broker(self) -> tuple[Settings, bool]:
        """Start the embedded Redis unless one is configured; the settings that reach it, and whether it is ours."""
        if self.settings.redis_url:
            return self.settings, False
        password = datadir.redis_password(self.data_dir)
        url = start_redis(self.sup, self.data_dir, password, self.stop)
        self.sup.env["REELMILL_REDIS_URL"] = url
        self.sup.env["REELMILL_REDIS_PASSWORD"] = password
        return recover.broker_settings(self.settings, url, password), True

    def recover(self, broker: Settings, embedded: bool) -> None:
        try:
            resent, restored = recover.recover(broker, self.data_dir, embedded)
        except Exception as exc:  # the sweeper will do it, only later
            self.sup.say("reelmill", f"could not recover the last run's work at once ({type(exc).__name__})")
            return
        if resent or restored:
            self.sup.say("reelmill", f"picked up the last run: {resent} jobs re-sent, {restored} tasks requeued")

    def shown(self, key: str) -> Shown:
        opts, env = self.opts, self.sup.env
        return Shown(
            api=http_url(opts.host, opts.port),
            flower=http_url(opts.host, opts.flower_port),
            sim=http_url("127.0.0.1", opts.sim_port) if opts.sim else None,
            sim_credits=f"{int(env.get('REELMILL_SIM_ANONYMOUS_CREDITS', '0')):,}" if opts.sim else None,
            data_dir=self.data_dir,
            key=key,
            flower_user=self.settings.flower_user,
            flower_password=None if self.settings.flower_password else env.get("REELMILL_FLOWER_PASSWORD"),
            cli=cli_invocation(),
        )

    def start(self) -> None:
        broker, embedded = self.broker()
        self.broker_settings = broker
        key = prepare_database(self.settings)
        self.recover(broker, embedded)
        start_apps(self.sup, self.opts, self.stop)
        self.record_workers()
        api = http_url(self.opts.host, self.opts.port)
        datadir.record_running(self.data_dir, api, external_database=bool(self.settings.database_url))
        child = self.settings.model_copy(update=child_overrides(self.settings, self.opts))
        self.sup.announce(banner(self.shown(key), dev_switches(child)))
        EventTail(lambda line: self.sup.say(time.strftime("%H:%M:%S"), line), self.stop).start()

    def record_workers(self) -> None:
        """The workers' pids, for the next `up` to resend what a worker that died with it still held."""
        datadir.record_workers(self.data_dir, [self.sup.children[r].proc.pid for r in WORKERS])

    def watch(self) -> int:
        """0 when asked to stop; 1 when a child kept dying (one that dies now and then is started again)."""
        code = keep_running(self.sup, self.stop, Restarts(RESTARTS), self.started_again)
        if code == 0:
            self.sup.say("reelmill", "stopping: api, beat, workers (warm), flower, sim, redis")
        return code

    def started_again(self, role: str, old_pid: int) -> None:
        if role not in WORKERS:
            return
        self.record_workers()
        try:
            resent = recover.resend_held_by(self.broker_settings or self.settings, old_pid)
        except Exception as exc:  # the sweeper resends them once their leases run out
            self.sup.say("reelmill", f"could not resend {role}'s jobs at once ({type(exc).__name__})")
            return
        if resent:
            self.sup.say("reelmill", f"{resent} jobs {role} held were sent again")


def parse_receivers(values: list[str]) -> tuple[str, ...]:
    for value in values:
        match = ADDRESS.match(value)
        if not match or not 0 < int(match.group(2)) < 65536:
            raise typer.BadParameter(f"{value!r} is not host:port (e.g. 127.0.0.1:9000)", param_hint="--allow-receiver")
    return tuple(values)


def up(
    sim: bool = typer.Option(False, "--sim", help="Also run the NemoVideo simulator and point the workers at it."),
    host: str = typer.Option("127.0.0.1", help="Interface the API and Flower listen on."),
    port: int = typer.Option(8000, help="API port."),
    flower_port: int = typer.Option(5555, help="Flower port."),
    sim_port: int = typer.Option(8300, help="Simulator port (loopback only)."),
    concurrency: int = typer.Option(20, help="Threads of the steps worker."),
    stream_concurrency: int = typer.Option(
        4, help="Threads of the streams worker: they hand each stream to its event loop (thousands per process)."
    ),
    webhook_concurrency: int = typer.Option(10, help="Threads of the webhooks worker (deliveries only)."),
    allow_receiver: list[str] = typer.Option(  # noqa: B008
        [], "--allow-receiver", help="host:port of a local webhook receiver to allow (repeatable)."
    ),
    stop_timeout: float = typer.Option(30.0, help="Seconds a worker may take to finish its steps on Ctrl-C."),
) -> None:
    """Run the whole service here: API, workers, beat, Flower (+ Redis, + simulator). Ctrl-C stops it all."""
    receivers = parse_receivers(allow_receiver)
    opts = UpOptions(
        host, port, flower_port, sim_port, sim, concurrency, stream_concurrency, stop_timeout,
        webhook_concurrency, receivers,
    )  # fmt: skip
    problem = check_ports(opts)
    if problem:
        typer.echo(f"reelmill up: {problem}", err=True)
        raise typer.Exit(2)
    raise typer.Exit(supervise(opts, get_settings()))


def supervise(opts: UpOptions, settings: Settings) -> int:
    if settings.redis_url and not embedded_redis.ping(settings.effective_redis_url or ""):
        typer.echo("reelmill up: REELMILL_REDIS_URL is set but its server does not answer PING", err=True)
        return 1
    os.umask(0o077)  # everything this process and its children create is private: the database, logs, uploads
    data_dir = datadir.prepare(settings.data_dir)
    try:
        lock = datadir.hold_lock(data_dir)
    except datadir.DataDirBusy as exc:
        typer.echo(f"reelmill up: {exc}", err=True)
        return 2
    with lock:
        return supervise_locked(opts, settings, data_dir)


def supervise_locked(opts: UpOptions, settings: Settings, data_dir: Path) -> int:
    stop, hurry = SignalEvent(), SignalEvent()
    install_signals(stop, hurry)
    flower_password = None if settings.flower_password else datadir.flower_password(data_dir)
    env = child_env(settings, opts, flower_password)
    sup = Supervisor(data_dir / datadir.LOG_DIR, env, show=important)
    sup.say("reelmill", f"starting in {data_dir} (logs in {sup.log_dir})")
    run = Run(opts, settings, data_dir, sup, stop)
    code = 1
    try:
        run.start()
        code = run.watch()
    except StartFailed as exc:
        sup.say("reelmill", f"could not start: {exc}; stopping everything")
    except StopRequested:
        code = 0
        sup.say("reelmill", "stopping before start-up finished")
    finally:
        stop.set()
        sup.stop(STOP_STAGES, hurry)
        datadir.forget_running()
        sup.say("reelmill", "all stopped" if code == 0 else f"stopped (exit {code})")
    return code
