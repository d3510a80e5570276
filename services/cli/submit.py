"""`reelmill submit "prompt"`: create one job through the API, optionally follow it and download the MP4."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from services.api.schemas.jobs import JobPublic
from services.cli import term
from services.cli.api_client import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, ApiClient, ApiError, report_error

FINAL = ("succeeded", "failed", "canceled")


def poll_every() -> float:
    from shared.settings import get_settings

    return get_settings().cli_poll_s


def split_assets(assets: list[str]) -> tuple[list[str], list[Path]]:
    """URLs go to the API as `assets`; anything else must be a local file, sent as a `files` part."""
    urls: list[str] = []
    files: list[Path] = []
    for item in assets:
        if item.lower().startswith(("http://", "https://")):
            urls.append(item)
            continue
        path = Path(item).expanduser()
        if not path.is_file():
            raise ApiError(f"--asset {item!r} is neither an http(s) URL nor a file", usage=True)
        files.append(path)
    return urls, files


def submit(
    prompt: Annotated[str, typer.Argument(help="What to make: a prompt, or a script of ~200 words.")],
    profile: Annotated[str | None, typer.Option("--profile", "-p", help="Skill profile (default: the API's).")] = None,
    asset: Annotated[list[str] | None, typer.Option("--asset", "-a", help="A URL or a local file; repeatable.")] = None,
    wait: Annotated[bool, typer.Option("--wait", "-w", help="Follow the job (stage, progress) to its end.")] = False,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Download the MP4 here (implies --wait).")] = None,
) -> None:
    """Submit one job. Exit code: 0 succeeded (or accepted, without --wait), 1 failed, 2 bad input."""
    console = term.console()
    try:
        urls, files = split_assets(asset or [])
        job: dict[str, Any] = {"prompt": prompt, "assets": urls}
        if profile:
            job["profile"] = profile
        client = ApiClient.from_env()
        created = client.create_job(job, files)
        console.print(f"job [bold]{created.id}[/] {created.status}", highlight=False)
        code = _follow(client, created, out, console) if (wait or out) else EXIT_OK
    except ApiError as exc:
        code = report_error(exc)
    raise typer.Exit(code)


def _follow(client: ApiClient, job: JobPublic, out: Path | None, console: Console) -> int:
    final = watch_job(client, job, console)
    if final is None:
        return EXIT_INTERRUPTED
    code = job_summary(final, console)
    if code == EXIT_OK and out is not None:
        download(client, final, out, console)
    return code


def watch_job(client: ApiClient, job: JobPublic, console: Console) -> JobPublic | None:
    """Show stage and progress until the job ends; None if the user pressed Ctrl-C (the job keeps running)."""
    columns = [SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%")]
    try:
        with Progress(*columns, TimeElapsedColumn(), console=console, transient=True) as bar:
            task = bar.add_task(_label(job), total=100, completed=job.progress)
            while job.status not in FINAL:
                time.sleep(poll_every())
                job = client.get_job(job.id)
                bar.update(task, description=_label(job), completed=job.progress)
        return job
    except KeyboardInterrupt:
        console.print(f"stopped watching; job {job.id} keeps running (see {job.urls.get})", highlight=False)
        return None


def _label(job: JobPublic) -> str:
    return f"{job.id} {job.status} · {job.stage}"


def job_summary(job: JobPublic, console: Console) -> int:
    if job.status == "succeeded":
        url = (job.output.url if job.output else None) or ""
        console.print(f"[green]succeeded[/] {escape(url)}", highlight=False)
        return EXIT_OK
    message = job.error.message if job.error else ""
    console.print(f"[red]{job.status}[/] {escape(message)}", highlight=False)
    return EXIT_FAILED


def download(client: ApiClient, job: JobPublic, out: Path, console: Console) -> None:
    """Stream the MP4 from the job's output URL to ``out`` (through a temporary file, so a half download is
    never left under the real name). The API key is not sent: the URL is the video host's, not reelmill's."""
    url = job.output.url if job.output else None
    if not url:
        raise ApiError("the job succeeded but has no output URL to download")
    partial = out.with_name(out.name + ".part")
    size = 0
    try:
        with partial.open("wb") as handle:
            for chunk in client.stream(url, auth=False):
                handle.write(chunk)
                size += len(chunk)
        partial.replace(out)
    except OSError as exc:
        raise ApiError(f"cannot write {out}: {exc.strerror}", usage=True) from None
    finally:
        partial.unlink(missing_ok=True)
    console.print(f"saved {size} bytes to {escape(str(out))}", highlight=False)
