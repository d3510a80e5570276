"""A small client for the reelmill API, for the `submit`, `batch` and `download` commands.

The URL comes from `REELMILL_API_URL` (default http://127.0.0.1:8000), the key from `REELMILL_API_KEY`. Every
failure becomes an `ApiError` whose message is the API's own error body (`{"error": {"code", "message", ...}}`);
a 4xx is the caller's input (exit code 2), anything else is a failure on the way (exit code 1). Jobs and batches
are read with the API's own response models (services/api/schemas), so a reply that drifts from them fails here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from services.api.schemas.batches import BatchJobPage, BatchPage, BatchPublic
from services.api.schemas.jobs import JobPublic

DEFAULT_URL = "http://127.0.0.1:8000"
CHUNK = 64 * 1024

EXIT_OK = 0  # everything asked for succeeded
EXIT_FAILED = 1  # a job or row failed, or the API could not be reached / answered 5xx
EXIT_USAGE = 2  # bad input or usage: a 4xx from the API, a missing file, a missing key
EXIT_INTERRUPTED = 130  # Ctrl-C while watching (the job or batch keeps running)
Model = TypeVar("Model", bound=BaseModel)


class ApiError(Exception):
    def __init__(
        self, message: str, *, status: int | None = None, code: str = "", details: Any = None, usage: bool = False
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.details = details
        self.usage = usage

    @property
    def exit_code(self) -> int:
        """2 when the request itself was wrong (a 4xx, a missing key or file), 1 for a failure on the way."""
        if self.usage or (self.status is not None and 400 <= self.status < 500):
            return EXIT_USAGE
        return EXIT_FAILED


class ApiClient:
    def __init__(self, base_url: str, key: str, *, timeout: float = 30.0, transport: httpx.BaseTransport | None = None):
        self.base_url = base_url.rstrip("/")
        self.http = httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {key}", "User-Agent": "reelmill-cli"},
            timeout=timeout,
            transport=transport,
        )

    @classmethod
    def from_env(cls) -> ApiClient:
        from shared.settings import get_settings

        settings = get_settings()
        key = settings.api_key.get_secret_value().strip() if settings.api_key else ""
        if not key:
            raise ApiError(
                "set REELMILL_API_KEY to your API key (`reelmill keys create --tenant NAME` makes one)", usage=True
            )
        return cls(settings.api_url or DEFAULT_URL, key)

    def close(self) -> None:
        self.http.close()

    # ---- requests ---------------------------------------------------------------------------------------

    def request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        return self._send(method, path, **kwargs).json()

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            resp = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ApiError(f"cannot reach the reelmill API at {self.base_url}: {exc.__class__.__name__}") from None
        _raise_for(resp)
        return resp

    def read(self, model: type[Model], method: str, path: str, **kwargs: Any) -> Model:
        """The reply to a request, read as ``model``."""
        body = self.request(method, path, **kwargs)
        try:
            return model.model_validate(body)
        except ValidationError as exc:  # the API and this CLI disagree on the shape: say where
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "body"
            message = f"the API's reply to {method} {path} is not a {model.__name__}: {where}: {first['msg']}"
            raise ApiError(message) from None

    def create_job(self, job: dict[str, Any], files: list[Path]) -> JobPublic:
        if not files:
            return self.read(JobPublic, "POST", "/v1/jobs", json=job)
        with ExitStack() as stack:
            parts = [("files", (p.name, stack.enter_context(p.open("rb")))) for p in files]
            return self.read(JobPublic, "POST", "/v1/jobs", data={"job": json.dumps(job)}, files=parts, timeout=None)

    def get_job(self, job_id: str) -> JobPublic:
        return self.read(JobPublic, "GET", f"/v1/jobs/{job_id}")

    def create_batch(self, csv_path: Path, fields: dict[str, str]) -> BatchPublic:
        with csv_path.open("rb") as handle:
            files = {"file": (csv_path.name, handle, "text/csv")}
            return self.read(BatchPublic, "POST", "/v1/batches", data=fields, files=files, timeout=600.0)

    def get_batch(self, batch_id: str) -> BatchPublic:
        return self.read(BatchPublic, "GET", f"/v1/batches/{batch_id}")

    def batch_jobs(self, batch_id: str, *, limit: int, cursor: str | None = None) -> BatchJobPage:
        params: dict[str, Any] = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        return self.read(BatchJobPage, "GET", f"/v1/batches/{batch_id}/jobs", params=params)

    def list_batches(
        self, *, status: list[str] | None = None, limit: int | None = None, cursor: str | None = None
    ) -> BatchPage:
        """One page of the tenant's batches, newest first."""
        params: dict[str, Any] = {}
        if status:
            params["status"] = status
        if limit is not None:
            params["limit"] = limit
        if cursor:
            params["cursor"] = cursor
        return self.read(BatchPage, "GET", "/v1/batches", params=params)

    def retry_batch(self, batch_id: str) -> tuple[BatchPublic, bool]:
        """The batch re-running ``batch_id``'s failed and canceled rows, and whether this call made it (False: the
        batch had been retried already, and this is that retry)."""
        resp = self._send("POST", f"/v1/batches/{batch_id}/retry")
        try:
            batch = BatchPublic.model_validate(resp.json())
        except ValidationError as exc:
            raise ApiError(f"the API's reply to POST /v1/batches/{batch_id}/retry is not a batch: {exc}") from None
        return batch, resp.headers.get("Idempotent-Replayed") != "true"

    def stream(self, path_or_url: str, *, auth: bool = True) -> Iterator[bytes]:
        """The bytes at an API path (or, with ``auth=False``, any URL such as a video's CDN address), in chunks."""
        client = self.http if auth else httpx.Client(timeout=self.http.timeout, follow_redirects=True)
        try:
            with client.stream("GET", path_or_url) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    _raise_for(resp)
                yield from resp.iter_bytes(CHUNK)
        except httpx.HTTPError as exc:
            raise ApiError(f"download from {path_or_url} failed: {exc.__class__.__name__}") from None
        finally:
            if not auth:
                client.close()


def _raise_for(resp: httpx.Response) -> None:
    if resp.status_code < 400:
        return
    try:
        error = resp.json().get("error", {})
    except (ValueError, AttributeError):
        error = {}
    if not isinstance(error, dict):
        error = {}
    message = error.get("message") or f"HTTP {resp.status_code} {resp.reason_phrase}"
    raise ApiError(message, status=resp.status_code, code=error.get("code", ""), details=error.get("details"))


# ---- what the commands share: error output -----------------------------------------------------------------


def report_error(error: ApiError, console: Console | None = None) -> int:
    """Print the API's error (and its details: row errors as a table) to stderr; return the exit code."""
    console = console or Console(stderr=True)
    console.print(f"[bold red]error:[/] {escape(error.message)}", highlight=False)
    details = error.details if isinstance(error.details, list) else []
    rows = [d for d in details if isinstance(d, dict)]
    if rows:
        console.print(error_table(rows))
    return error.exit_code


def error_table(rows: list[dict[str, Any]]) -> Table:
    """Row errors (`line`, `column`, `message`) or field errors (`field`, `message`) as a table."""
    keys = ["line", "column", "message"] if "line" in rows[0] else ["field", "message"]
    table = Table(*[k.capitalize() for k in keys], show_lines=False, highlight=False)
    for row in rows:
        table.add_row(*[escape("" if row.get(k) is None else str(row.get(k))) for k in keys])
    return table
