"""`reelmill batch submit|status|results|list|retry`: send a CSV of jobs, follow it with a live progress bar, fetch
results, list the batches, retry a batch's failed and canceled rows (as a new batch linked to it: docs/batches.md).

Ctrl-C stops watching, never the batch: it runs on the server, and `reelmill batch status ID --wait` reattaches.
Exit codes: 0 every row succeeded, 1 some row failed, was canceled or skipped, 2 bad input or usage.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from services.api.schemas.batches import BatchPublic
from services.cli import term
from services.cli.api_client import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    ApiClient,
    ApiError,
    error_table,
    report_error,
)
from services.cli.submit import poll_every

app = typer.Typer(
    help="Submit a CSV of jobs, follow it, fetch its results; list batches, retry their failed rows.",
    no_args_is_help=True,
)
FINAL = ("completed", "canceled")


@app.command("submit")
def submit(
    csv_file: Annotated[Path, typer.Argument(help="The CSV: a header (prompt, profile, asset_urls, ...), then jobs.")],
    wait: Annotated[bool, typer.Option("--wait", "-w", help="Follow the batch with a progress bar.")] = False,
    on_error: Annotated[
        str, typer.Option(help="reject: refuse a file with any bad row; skip: run the rest.")
    ] = "reject",
    max_in_flight: Annotated[int | None, typer.Option(help="How many of its jobs run at once.")] = None,
    webhook: Annotated[str | None, typer.Option(help="Send job and batch.completed events here.")] = None,
    webhook_events: Annotated[str | None, typer.Option(help="Which job events: start,progress,completed.")] = None,
) -> None:
    """Submit a batch. Without --wait, exit 0 once the API accepted it."""
    console = term.console()
    fields = {"on_error": on_error}
    if max_in_flight is not None:
        fields["max_in_flight"] = str(max_in_flight)
    if webhook:
        fields["webhook"] = webhook
    if webhook_events:
        fields["webhook_events_filter"] = webhook_events
    try:
        if not csv_file.is_file():
            raise ApiError(f"no such file: {csv_file}", usage=True)
        client = ApiClient.from_env()
        batch = client.create_batch(csv_file, fields)
        _accepted(batch, console)
        code = _follow(client, batch, console) if wait else EXIT_OK
    except ApiError as exc:
        code = report_error(exc)
    raise typer.Exit(code)


@app.command("status")
def status(
    batch_id: Annotated[str, typer.Argument(help="The batch id (bat_...).")],
    wait: Annotated[
        bool, typer.Option("--wait", "-w", help="Follow the batch to its end (reattach after Ctrl-C).")
    ] = False,
) -> None:
    """Show a batch's status and counts; with --wait, follow it to the end."""
    console = term.console()
    try:
        client = ApiClient.from_env()
        batch = client.get_batch(batch_id)
        if wait:
            code = _follow(client, batch, console)
        else:
            console.print(summary_line(batch), highlight=False)
            code = outcome(batch) if batch.status in FINAL else EXIT_OK
    except ApiError as exc:
        code = report_error(exc)
    raise typer.Exit(code)


@app.command("results")
def results(
    batch_id: Annotated[str, typer.Argument(help="The batch id (bat_...).")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the CSV here (default: stdout).")] = None,
) -> None:
    """Fetch results.csv: line, external_id, status, output_url, error; one line per input row."""
    try:
        client = ApiClient.from_env()
        chunks = client.stream(f"/v1/batches/{batch_id}/results.csv")
        if output is None:
            for chunk in chunks:
                sys.stdout.buffer.write(chunk)
            sys.stdout.buffer.flush()
        else:
            _save(chunks, output)
            term.console(stderr=True).print(f"wrote {escape(str(output))}", highlight=False)
    except ApiError as exc:
        raise typer.Exit(report_error(exc)) from None
    raise typer.Exit(EXIT_OK)


@app.command("list")
def list_(
    status: Annotated[
        list[str] | None,
        typer.Option(
            "--status", "-s", help="Only these: queued, running, paused, completed, canceled (repeat, or a,b)."
        ),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=200, help="How many (newest first).")] = 20,
    cursor: Annotated[str | None, typer.Option(help="Continue after a previous page (its next_cursor).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the API's page as JSON.")] = False,
) -> None:
    """List your batches, newest first."""
    console = term.console()
    try:
        page = ApiClient.from_env().list_batches(status=status, limit=limit, cursor=cursor)
    except ApiError as exc:
        raise typer.Exit(report_error(exc)) from None
    if as_json:
        sys.stdout.write(json.dumps(page.model_dump(mode="json"), indent=2) + "\n")
        raise typer.Exit(EXIT_OK)
    if not page.data:
        console.print("no batches" + (f" with status {', '.join(status)}" if status else ""), highlight=False)
        raise typer.Exit(EXIT_OK)
    console.print(batch_table(page.data))
    if page.next_cursor:
        console.print(f"more: reelmill batch list --limit {limit} --cursor {page.next_cursor}", highlight=False)
    raise typer.Exit(EXIT_OK)


@app.command("retry")
def retry(
    batch_id: Annotated[str, typer.Argument(help="The batch id (bat_...): it has ended and has failed rows.")],
    wait: Annotated[bool, typer.Option("--wait", "-w", help="Follow the new batch with a progress bar.")] = False,
) -> None:
    """Re-run a batch's failed and canceled rows (same external_id and line numbers) as a new batch linked to it."""
    console = term.console()
    try:
        client = ApiClient.from_env()
        new, created = client.retry_batch(batch_id)
        jobs = new.total
        if created:
            console.print(
                f"batch [bold]{new.id}[/] retries {jobs} failed or canceled rows of batch {batch_id}",
                highlight=False,
            )
        else:
            console.print(f"batch {batch_id} was already retried as [bold]{new.id}[/] ({jobs} rows)")
        code = _follow(client, new, console) if wait else EXIT_OK
        if not wait:
            console.print(f"watch it: reelmill batch status {new.id} --wait", highlight=False)
    except ApiError as exc:
        code = report_error(exc)
    raise typer.Exit(code)


def batch_table(items: list[BatchPublic]) -> Table:
    columns = ["Batch", "Status", "Jobs", "Succeeded", "Failed", "Canceled", "Running", "Queued", "Created", "Retry of"]
    table = Table(*columns, highlight=False)
    for batch in items:
        c = batch.counts
        table.add_row(
            batch.id,
            batch.status,
            str(batch.total - batch.skipped),
            str(c.succeeded),
            str(c.failed),
            str(c.canceled),
            str(c.starting + c.processing),
            str(c.queued),
            batch.created_at or "",
            batch.retry_of or "",
        )
    return table


def _save(chunks: Any, output: Path) -> None:
    partial = output.with_name(output.name + ".part")
    try:
        with partial.open("wb") as handle:
            for chunk in chunks:
                handle.write(chunk)
        partial.replace(output)
    except OSError as exc:
        raise ApiError(f"cannot write {output}: {exc.strerror}", usage=True) from None
    finally:
        partial.unlink(missing_ok=True)


# ---- output ----------------------------------------------------------------------------------------------


def _accepted(batch: BatchPublic, console: Console) -> None:
    jobs = batch.total - batch.skipped
    console.print(f"batch [bold]{batch.id}[/] accepted: {jobs} jobs, {batch.skipped} rows skipped", highlight=False)
    if batch.row_errors:
        console.print("skipped rows:")
        console.print(error_table([e.model_dump() for e in batch.row_errors]))


def counts_of(batch: BatchPublic) -> tuple[int, int, int, int]:
    """(done, failed, running, jobs): failed counts canceled jobs too."""
    c = batch.counts
    done = c.succeeded + c.failed + c.canceled
    return done, c.failed + c.canceled, c.starting + c.processing, batch.total - batch.skipped


def summary_line(batch: BatchPublic) -> str:
    c = batch.counts
    return (
        f"batch {batch.id} {batch.status}: {c.succeeded} succeeded, {c.failed} failed, "
        f"{c.canceled} canceled, {c.starting + c.processing} running, "
        f"{c.queued} queued, {batch.skipped} skipped"
    )


def outcome(batch: BatchPublic) -> int:
    c = batch.counts
    bad = c.failed + c.canceled + batch.skipped
    return EXIT_OK if batch.status == "completed" and bad == 0 else EXIT_FAILED


class _Rate:
    """Jobs finished per second since watching began, and the time left at that pace."""

    def __init__(self, done: int) -> None:
        self.start_done = done
        self.started = time.monotonic()

    def text(self, done: int, jobs: int) -> str:
        elapsed = time.monotonic() - self.started
        finished = done - self.start_done
        if finished <= 0 or elapsed <= 0:
            return "rate -, left -"
        rate = finished / elapsed
        left = (jobs - done) / rate
        return f"{rate * 60:.1f}/min, left {_duration(left)}"


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


def _follow(client: ApiClient, batch: BatchPublic, console: Console) -> int:
    """The live progress bar until the batch ends. Ctrl-C stops watching only."""
    done, failed, running, jobs = counts_of(batch)
    rate = _Rate(done)
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}")]
    try:
        with Progress(*columns, console=console, transient=True) as bar:
            task = bar.add_task(batch.id, total=jobs, completed=done, info="")
            while True:
                done, failed, running, jobs = counts_of(batch)
                info = f"failed {failed} · running {running} · {rate.text(done, jobs)}"
                bar.update(task, completed=done, total=jobs, info=info)
                if batch.status in FINAL:
                    break
                time.sleep(poll_every())
                batch = client.get_batch(batch.id)
    except KeyboardInterrupt:
        batch_id = batch.id
        console.print(
            f"stopped watching; batch {batch_id} keeps running. Reattach with: reelmill batch status {batch_id} --wait",
            highlight=False,
        )
        return EXIT_INTERRUPTED
    console.print(summary_line(batch), highlight=False)
    return outcome(batch)
