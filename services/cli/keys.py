"""`reelmill keys create|revoke|list`: API keys, run against the database directly (an operator's tool).

Which database: REELMILL_DATABASE_URL if set; else REELMILL_DATA_DIR if set; else the data dir of the
`reelmill up` running for this user (it records it), so the command works from any directory; else the default
`./.reelmill`. Every command says on stderr which database it uses, and none creates a SQLite file: a missing one
is an error that names it. A key is revoked by its id (`reelmill keys list`) or read from stdin, never passed as
an argument (it would stay in the shell history and the process list).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import typer
from sqlalchemy.engine import make_url
from sqlmodel import Session

from services.cli import datadir
from shared.settings import Settings, get_settings

app = typer.Typer(help="Create, revoke and list API keys.", no_args_is_help=True)


@dataclass(frozen=True)
class KeysDatabase:
    url: str
    origin: str  # why this one, in words

    @property
    def shown(self) -> str:
        return make_url(self.url).render_as_string(hide_password=True)

    @property
    def sqlite_file(self) -> Path | None:
        return Path(self.url.split("///", 1)[1]) if self.url.startswith("sqlite:///") else None


def resolve(settings: Settings) -> KeysDatabase:
    if settings.database_url:
        return KeysDatabase(settings.database_url, "REELMILL_DATABASE_URL")
    if "data_dir" in settings.model_fields_set:
        return KeysDatabase(settings.effective_database_url, "REELMILL_DATA_DIR")
    running = datadir.running_up()
    if running is not None and running.external_database:
        fail("the running `reelmill up` uses REELMILL_DATABASE_URL: set the same here")
    if running is not None:
        url = Settings(data_dir=running.data_dir).effective_database_url
        return KeysDatabase(url, f"the running `reelmill up`, data dir {running.data_dir}")
    return KeysDatabase(settings.effective_database_url, "the default data dir; no `reelmill up` is running")


def fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


@contextmanager
def database() -> Iterator[Session]:
    """A session on the resolved database, brought to the schema's head if it is the SQLite default."""
    from shared.db.engine import make_engine
    from shared.db.migrate import upgrade_head

    db = resolve(get_settings())
    typer.echo(f"database: {db.shown} ({db.origin})", err=True)
    if db.sqlite_file is not None:
        if not db.sqlite_file.is_file():
            fail(
                f"no database at {db.sqlite_file}. Start `reelmill up` (it creates it), or point at the service's "
                "database with REELMILL_DATA_DIR or REELMILL_DATABASE_URL"
            )
        upgrade_head(db.url)
    engine = make_engine(db.url)
    try:
        with Session(engine, expire_on_commit=False) as session:
            yield session
            session.commit()
    finally:
        engine.dispose()


@app.command("create")
def create(tenant: str = typer.Option(..., "--tenant", help="Tenant name; created if new.")) -> None:
    """Create a key for TENANT and print it (once: only its hash is stored)."""
    from shared.domain.tenants import create_key

    with database() as session:
        made = create_key(session, tenant)
    typer.echo(f"tenant:  {made.tenant_name} ({made.tenant_id})", err=True)
    typer.echo(f"key id:  {made.key_id}", err=True)
    typer.echo("api key (shown once, keep it safe):", err=True)
    typer.echo(made.key)


@app.command("revoke")
def revoke(
    key_id: str = typer.Argument(
        ..., help="The key id (key_…, see `reelmill keys list`), or - to read the key on stdin."
    ),
) -> None:
    """Revoke a key: requests with it get 401 from now on."""
    from shared.domain.errors import NotFound
    from shared.domain.tenants import KEY_PREFIX, revoke_key

    if key_id.startswith(KEY_PREFIX):
        fail("pass the key id (`reelmill keys list` shows it), or the key itself on stdin: `reelmill keys revoke -`")
    if key_id == "-":
        key_id = sys.stdin.readline().strip()
        if not key_id:
            fail("no key on stdin")
    elif not key_id.startswith("key_"):
        fail(f"{key_id!r} is not a key id (key_…)")
    try:
        with database() as session:
            row = revoke_key(session, key_id)
    except NotFound as exc:
        fail(exc.message)
    typer.echo(f"revoked {row.id}")


@app.command("list")
def list_(tenant: str | None = typer.Option(None, "--tenant", help="Only this tenant's keys.")) -> None:
    """List keys (ids and prefixes, never the keys)."""
    from shared.domain.tenants import list_keys

    with database() as session:
        rows = list_keys(session, tenant)
        if not rows:
            typer.echo("no API keys in this database" + (f" for tenant {tenant!r}" if tenant else ""), err=True)
        for key, ten in rows:
            state = "revoked" if key.revoked_at else "active"
            typer.echo(f"{key.id}  {key.prefix}…  {ten.name:<20} {state}")
