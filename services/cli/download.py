"""`reelmill download JOB_ID` and `reelmill batch download BATCH_ID DIR`: fetch stored videos from the artifact
store through the API (`GET /v1/jobs/{id}/output`), each checked against its sha256.

Downloads are resumable: bytes land in `FILE.part`, a rerun continues it with a `Range` request tied to the
artifact's ETag (`If-Range`), and a file already there with the right checksum is not fetched again. A batch is
fetched in parallel, files named by each job's `external_id` when it has one, with a progress bar.
Exit codes: 0 everything fetched, 1 some video could not be (not stored yet, failed, a checksum mismatch),
2 bad input or usage.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

from services.api.schemas.jobs import ArtifactPublic, JobPublic, OutputPublic
from services.cli.api_client import EXIT_FAILED, EXIT_OK, ApiClient, ApiError, _raise_for, report_error
from services.cli.submit import poll_every

CHUNK = 256 * 1024
PAGE = 200
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
Progressed = Callable[[int], None]


@dataclass(frozen=True)
class Wanted:
    """One video to fetch: where from, where to, and the checksum it must have."""

    job_id: str
    path: str  # the API path (with ?revision=N)
    sha256: str
    size: int
    dest: Path


class ChecksumMismatch(ApiError):
    pass


# ---- one job ---------------------------------------------------------------------------------------------


def download(
    job_id: Annotated[str, typer.Argument(help="The job id (job_...).")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here (default: ./<job>.mp4).")] = None,
    revision: Annotated[int | None, typer.Option(help="A step's or revision's output (its index).")] = None,
    wait: Annotated[bool, typer.Option("--wait", "-w", help="Wait until the job's video is stored.")] = False,
) -> None:
    """Download a job's video from the artifact store, resumably, checked against its sha256."""
    console = Console(stderr=True)
    try:
        client = ApiClient.from_env()
        job = _wait_stored(client, job_id, revision) if wait else client.get_job(job_id)
        artifact = stored_artifact(job, revision)
        dest = output or Path(f"{job_id}.mp4" if revision is None else f"{job_id}-{revision}.mp4")
        wanted = Wanted(job_id, output_path(job_id, revision), artifact.sha256 or "", artifact.size or 0, dest)
        with _bar(console) as bar:
            task = bar.add_task(dest.name, total=wanted.size)
            fetched = fetch(client, wanted, lambda n: bar.advance(task, n))
        console.print(f"{'saved' if fetched else 'already there:'} {escape(str(dest))} sha256 {wanted.sha256}")
    except ApiError as exc:
        raise typer.Exit(report_error(exc, console)) from None
    raise typer.Exit(EXIT_OK)


def output_path(job_id: str, revision: int | None) -> str:
    return f"/v1/jobs/{job_id}/output" + ("" if revision is None else f"?revision={revision}")


def stored_artifact(job: JobPublic, revision: int | None) -> ArtifactPublic:
    """The job's (or the revision's) stored artifact, or an ApiError that says why there is none."""
    output = job.output if revision is None else _revision_output(job, revision)
    if output is None:
        raise ApiError(f"job {job.id} has no output (status: {job.status})")
    artifact = output.artifact
    if artifact is None:
        raise ApiError(f"job {job.id}'s output was not copied to the artifact store (mirroring is off)")
    if artifact.status == "pending":
        raise ApiError(f"job {job.id}'s video is still being copied to the artifact store; try again or --wait")
    if artifact.status != "stored" or artifact.sha256 is None or artifact.size is None:
        reason = f": {artifact.reason}" if artifact.reason else ""
        raise ApiError(f"job {job.id}'s video is {artifact.status}{reason}")
    return artifact


def _revision_output(job: JobPublic, revision: int) -> OutputPublic | None:
    for turn in job.revisions:
        if turn.index == revision:
            return turn.output
    raise ApiError(f"job {job.id} has no revision {revision}", usage=True)


def _wait_stored(client: ApiClient, job_id: str, revision: int | None) -> JobPublic:
    while True:
        job = client.get_job(job_id)
        output = job.output if revision is None else _revision_output(job, revision)
        artifact = output.artifact if output else None
        if job.status.terminal and (artifact is None or artifact.status != "pending"):
            return job
        time.sleep(poll_every())


# ---- the bytes ---------------------------------------------------------------------------------------------


def fetch(client: ApiClient, wanted: Wanted, progressed: Progressed) -> bool:
    """Fetch ``wanted`` to its destination; False when a file with the right checksum is already there."""
    if wanted.dest.is_file() and file_sha256(wanted.dest) == wanted.sha256:
        progressed(wanted.size)
        return False
    part = wanted.dest.with_name(wanted.dest.name + ".part")
    try:
        wanted.dest.parent.mkdir(parents=True, exist_ok=True)
        have = part.stat().st_size if part.is_file() else 0
        if have > wanted.size:
            part.unlink()
            have = 0
        _stream_into(client, wanted, part, have, progressed)
        got = file_sha256(part)
        if got != wanted.sha256:
            part.unlink(missing_ok=True)
            raise ChecksumMismatch(f"{wanted.dest}: sha256 {got} is not the stored {wanted.sha256}; removed")
        part.replace(wanted.dest)
    except OSError as exc:
        raise ApiError(f"cannot write {wanted.dest}: {exc.strerror}", usage=True) from None
    return True


def _stream_into(client: ApiClient, wanted: Wanted, part: Path, have: int, progressed: Progressed) -> None:
    headers = {"Range": f"bytes={have}-", "If-Range": f'"{wanted.sha256}"'} if have else {}
    try:
        with client.http.stream("GET", wanted.path, headers=headers, follow_redirects=True, timeout=None) as resp:
            if resp.status_code >= 400:
                resp.read()
                _raise_for(resp)
            resumed = resp.status_code == 206
            progressed(have if resumed else 0)
            with part.open("ab" if resumed else "wb") as out:
                for chunk in resp.iter_bytes(CHUNK):
                    out.write(chunk)
                    progressed(len(chunk))
    except httpx.HTTPError as exc:
        broke = f"download of {wanted.job_id} broke off ({exc.__class__.__name__}); run again to resume"
        raise ApiError(broke) from None


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1024 * 1024):
            digest.update(block)
    return digest.hexdigest()


def _bar(console: Console) -> Progress:
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    return Progress(*columns, console=console, transient=False)


# ---- a batch ---------------------------------------------------------------------------------------------


def batch_download(
    batch_id: Annotated[str, typer.Argument(help="The batch id (bat_...).")],
    directory: Annotated[Path, typer.Argument(help="Where the videos go (created if missing).")],
    parallel: Annotated[int, typer.Option(min=1, max=32, help="Downloads at once.")] = 4,
) -> None:
    """Download every stored video of a batch into DIR, named by external_id (else the job id); rerun to resume."""
    console = Console(stderr=True)
    try:
        client = ApiClient.from_env()
        client.get_batch(batch_id)  # 404 before anything is written
        plan, missing = plan_batch(client, batch_id, directory)
        failures = _fetch_all(client, plan, parallel, console)
    except ApiError as exc:
        raise typer.Exit(report_error(exc, console)) from None
    for job_id, why in missing + failures:
        console.print(f"[yellow]not downloaded[/] {job_id}: {escape(why)}", highlight=False)
    done = len(plan) - len(failures)
    console.print(f"{done} videos in {escape(str(directory))}, {len(missing) + len(failures)} not downloaded")
    raise typer.Exit(EXIT_OK if not (missing or failures) else EXIT_FAILED)


def batch_jobs(client: ApiClient, batch_id: str) -> Iterator[JobPublic]:
    cursor: str | None = None
    while True:
        page = client.batch_jobs(batch_id, limit=PAGE, cursor=cursor)
        yield from page.data
        cursor = page.next_cursor
        if not cursor:
            return


def plan_batch(client: ApiClient, batch_id: str, directory: Path) -> tuple[list[Wanted], list[tuple[str, str]]]:
    """What to fetch (in batch order, one unique file name each) and which jobs have no video to fetch."""
    plan: list[Wanted] = []
    missing: list[tuple[str, str]] = []
    taken: set[str] = set()
    for job in batch_jobs(client, batch_id):
        try:
            artifact = stored_artifact(job, None)
        except ApiError as exc:
            missing.append((job.id, exc.message))
            continue
        dest = directory / file_name(job, taken)
        plan.append(Wanted(job.id, output_path(job.id, None), artifact.sha256 or "", artifact.size or 0, dest))
    return plan, missing


def file_name(job: JobPublic, taken: set[str]) -> str:
    """`<external_id>.mp4` (made safe for a file system), else `<job id>.mp4`; a clash adds the job id."""
    stem = _UNSAFE.sub("_", job.external_id or "").strip("._")[:150] or job.id
    name = f"{stem}.mp4"
    if name.lower() in taken:
        name = f"{stem}-{job.id}.mp4"
    taken.add(name.lower())
    return name


def _fetch_all(client: ApiClient, plan: list[Wanted], parallel: int, console: Console) -> list[tuple[str, str]]:
    failures: list[tuple[str, str]] = []
    lock = threading.Lock()
    with _bar(console) as bar:
        task = bar.add_task(f"{len(plan)} videos", total=sum(w.size for w in plan))

        def one(wanted: Wanted) -> None:
            try:
                fetch(client, wanted, lambda n: bar.advance(task, n))
            except ApiError as exc:
                with lock:
                    failures.append((wanted.job_id, exc.message))

        with ThreadPoolExecutor(max_workers=parallel) as pool:
            list(pool.map(one, plan))
    return failures
