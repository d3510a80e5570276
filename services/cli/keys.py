"""`reelmill keys create|revoke|list`: API keys, run against the database directly (an operator's tool)."""

from __future__ import annotations

import typer

app = typer.Typer(help="Create, revoke and list API keys.", no_args_is_help=True)


def _db_ready() -> None:
    """On the laptop default (SQLite) bring the schema up first; production runs `reelmill migrate`."""
    from shared.settings import get_settings

    if get_settings().effective_database_url.startswith("sqlite"):
        from shared.db.migrate import upgrade_head

        upgrade_head()


@app.command("create")
def create(tenant: str = typer.Option(..., "--tenant", help="Tenant name; created if new.")) -> None:
    """Create a key for TENANT and print it (once: only its hash is stored)."""
    from shared.db import session_scope
    from shared.domain.tenants import create_key

    _db_ready()
    with session_scope() as session:
        made = create_key(session, tenant)
    typer.echo(f"tenant:  {made.tenant_name} ({made.tenant_id})", err=True)
    typer.echo(f"key id:  {made.key_id}", err=True)
    typer.echo("api key (shown once, keep it safe):", err=True)
    typer.echo(made.key)


@app.command("revoke")
def revoke(key: str = typer.Argument(..., help="The key id (key_…) or the key itself.")) -> None:
    """Revoke a key: requests with it get 401 from now on."""
    from shared.db import session_scope
    from shared.domain.errors import NotFound
    from shared.domain.tenants import revoke_key

    _db_ready()
    try:
        with session_scope() as session:
            row = revoke_key(session, key)
    except NotFound as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"revoked {row.id}")


@app.command("list")
def list_(tenant: str | None = typer.Option(None, "--tenant", help="Only this tenant's keys.")) -> None:
    """List keys (ids and prefixes, never the keys)."""
    from shared.db import session_scope
    from shared.domain.tenants import list_keys

    _db_ready()
    with session_scope() as session:
        for key, ten in list_keys(session, tenant):
            state = "revoked" if key.revoked_at else "active"
            typer.echo(f"{key.id}  {key.prefix}…  {ten.name:<20} {state}")
