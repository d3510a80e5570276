"""`GET /v1/jobs/{id}/output`: the job's video from the artifact store (docs/artifacts.md).

It streams the stored file with `Range`, `ETag` (the sha256), `Content-Type` and `Content-Length`, or, with
`REELMILL_ARTIFACT_PRESIGN=true` and an S3 store, answers 302 to a short-lived pre-signed URL. `?revision=N`
picks a step's or a revision's output (the `index` in `revisions`). Tenant-scoped: another tenant's job is 404.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse, StreamingResponse

from services.api.byte_ranges import ByteRange, Unsatisfiable, parse_range
from services.api.deps import SessionDep, TenantDep
from services.api.schemas.errors import protected
from shared.artifacts.errors import MirrorError
from shared.artifacts.lookup import ArtifactGone, ArtifactStoreDown, find_artifact
from shared.artifacts.stores import ArtifactStore, open_store
from shared.settings import get_settings
from shared.tables import Artifact

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])
MAX_INDEX = 999_999_999  # a revision index fits the database's integer (a bigger one is a 422, not a 500)


_VIDEO = {"video/mp4": {"schema": {"type": "string", "format": "binary"}}}
_OUTPUT_DOC: dict[str, Any] = {
    "summary": "Download the job's video (or a revision's) from the artifact store",
    "response_class": StreamingResponse,
    "responses": {
        200: {"description": "The video (`ETag` is its sha256; `Accept-Ranges: bytes`)", "content": _VIDEO},
        206: {"description": "The range asked for (`Content-Range`)", "content": _VIDEO},
        302: {"description": "To a pre-signed URL (S3 store with REELMILL_ARTIFACT_PRESIGN=true)"},
        304: {"description": "`If-None-Match` matched: the copy you have is current"},
        416: {"description": "The range is outside the file (`Content-Range: bytes */size`)"},
        **protected(404, 409, 410, 422, 503),
    },
}


# GET and HEAD as two operations (one route with both methods would give both one operation id)
@router.head("/{job_id}/output", operation_id="head_output", **_OUTPUT_DOC)
@router.get("/{job_id}/output", operation_id="download_output", **_OUTPUT_DOC)
def output(
    job_id: str,
    request: Request,
    tenant: TenantDep,
    session: SessionDep,
    revision: Annotated[int | None, Query(ge=0, le=MAX_INDEX, description="a step's or revision's index")] = None,
) -> Response:
    row = find_artifact(session, tenant.id, job_id, revision)
    session.close()  # the bytes may take minutes: hold no database connection meanwhile
    store = open_store(row.store_url)
    filename = f"{row.job_id}-{row.turn_seq}.mp4"
    settings = get_settings()
    if settings.artifact_presign:
        url = store.presigned_url(
            row.key, expires_s=settings.artifact_presign_ttl_s, filename=filename, content_type=_type(row)
        )
        if url is not None:
            return RedirectResponse(url, status_code=302, headers={"Cache-Control": "no-store"})
    return _serve(request, store, row, filename)


def _type(row: Artifact) -> str:
    return row.content_type or "video/mp4"


def _serve(request: Request, store: ArtifactStore, row: Artifact, filename: str) -> Response:
    size = _size(store, row)
    etag = f'"{row.sha256}"'
    headers = {
        "ETag": etag,
        "Accept-Ranges": "bytes",
        "Content-Disposition": f'attachment; filename="{filename}"',
        "Cache-Control": "private, max-age=0",
    }
    if etag in _tags(request.headers.get("if-none-match")):
        return Response(status_code=304, headers=headers)
    wanted = request.headers.get("range")
    if_range = request.headers.get("if-range")
    try:
        part = parse_range(wanted, size) if if_range in (None, etag) else None
    except Unsatisfiable:
        return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{size}"})
    status, length = (206, part.length) if part else (200, size)
    headers["Content-Length"] = str(length)
    if part is not None:
        headers["Content-Range"] = part.content_range(size)
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers, media_type=_type(row))
    body = _chunks(store, row.key, part)
    return StreamingResponse(body, status_code=status, headers=headers, media_type=_type(row))


def _size(store: ArtifactStore, row: Artifact) -> int:
    try:
        size = store.size_of(row.key)
    except MirrorError as exc:
        raise ArtifactStoreDown(f"the artifact store cannot be read right now: {exc.reason}") from None
    if size is None:
        raise ArtifactGone("the stored output is missing from the artifact store")
    return size


def _chunks(store: ArtifactStore, key: str, part: ByteRange | None) -> Iterator[bytes]:
    yield from store.read(key, part.start if part else 0, part.end if part else None)


def _tags(header: str | None) -> set[str]:
    return {tag.strip().removeprefix("W/") for tag in (header or "").split(",") if tag.strip()}
