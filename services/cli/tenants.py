"""`reelmill tenants list|set-weight|set-max-in-flight`: tenants' fair shares of NemoVideo's capacity.

Run against the database the service uses, found as `reelmill keys` finds it (services/cli/keys.py). The scheduler
reads weights and caps from the database on every round, so a change applies within a second, no restart.
TENANT is a tenant's name (as given to `reelmill keys create --tenant`) or its id (`ten_…`).
"""

from __future__ import annotations

import json

import typer

from services.cli.keys import database, fail
from shared.domain.errors import DomainError
from shared.domain.tenant_shares import MAX_CAP, MAX_WEIGHT, NO_CAP

app = typer.Typer(
    help="Tenants' fair shares: weights, caps on jobs in flight, and what each has waiting.", no_args_is_help=True
)

# a negative number is a value to refuse with its reason, not an unknown option
_NUMBERS = {"ignore_unknown_options": True}


@app.command("list")
def list_(as_json: bool = typer.Option(False, "--json", help="One JSON array on stdout.")) -> None:
    """Every tenant: weight, max in flight, jobs queued (waiting to start) and in flight."""
    from shared.domain.tenant_shares import list_shares

    with database() as session:
        shares = list_shares(session)
    if as_json:
        typer.echo(json.dumps([s.as_dict() for s in shares], indent=2))
        return
    if not shares:
        typer.echo("no tenants in this database (`reelmill keys create --tenant NAME` makes one)", err=True)
        return
    rows = [("TENANT", "ID", "WEIGHT", "MAX IN FLIGHT", "QUEUED", "IN FLIGHT")]
    rows += [
        (s.tenant, s.id, str(s.weight), "-" if s.max_in_flight is None else str(s.max_in_flight), str(s.queued),
         str(s.in_flight))
        for s in shares
    ]  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        typer.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


@app.command("set-weight", context_settings=_NUMBERS)
def set_weight(
    tenant: str = typer.Argument(..., help="Tenant name or id."),
    weight: str = typer.Argument(..., help=f"An integer from 1 to {MAX_WEIGHT}; default 1."),
) -> None:
    """Set TENANT's weight: with every tenant busy, each gets weight / sum of weights of the capacity."""
    from shared.domain.tenant_shares import parse_weight
    from shared.domain.tenant_shares import set_weight as apply

    try:
        value = parse_weight(weight)  # before the database: a typo is named at once
        with database() as session:
            row = apply(session, tenant, value)
    except DomainError as exc:
        fail(exc.message)
    typer.echo(f"{row.name}: weight {row.weight}")


@app.command("set-max-in-flight", context_settings=_NUMBERS)
def set_max_in_flight(
    tenant: str = typer.Argument(..., help="Tenant name or id."),
    cap: str = typer.Argument(..., metavar="N", help=f"An integer from 1 to {MAX_CAP}, or {NO_CAP} to remove the cap."),
) -> None:
    """Cap TENANT's jobs in flight (started, not ended), or remove the cap with `none`. 0 is refused: it would hold
    the tenant's jobs forever (pause its batches, or revoke its keys, instead)."""
    from shared.domain.tenant_shares import parse_max_in_flight
    from shared.domain.tenant_shares import set_max_in_flight as apply

    try:
        value = parse_max_in_flight(cap)
        with database() as session:
            row = apply(session, tenant, value)
    except DomainError as exc:
        fail(exc.message)
    shown = "no cap" if row.max_in_flight is None else str(row.max_in_flight)
    typer.echo(f"{row.name}: max in flight {shown}")
