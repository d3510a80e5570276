"""Reading a `POST /v1/jobs` body: JSON, or multipart with a `job` JSON field and `files` parts streamed to disk.

The body's size is capped by the perimeter while it streams (services/api/perimeter.py); the JSON itself goes
through `parse_json`, which refuses what only fails later (depth, huge numbers, lone surrogates).
"""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError

from services.api.errors import validation_details
from services.api.json_body import parse_json
from services.api.multipart import FormData, StreamingForm
from shared.domain.errors import TooLarge, ValidationFailed
from shared.domain.job_input import JobSpec
from shared.nemo.profiles import PROFILES, SkillProfile, get_profile
from shared.settings import get_settings

M = TypeVar("M", bound=BaseModel)


def parse_model(model: type[M], payload: Any) -> M:
    """``payload`` as ``model``, or a 422 naming the first bad field (and listing every one)."""
    if not isinstance(payload, dict):
        raise ValidationFailed("the body must be a JSON object", field="body")
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        details = validation_details(list(exc.errors()))
        first = details[0]
        raise ValidationFailed(f"{first['field']}: {first['message']}", field=first["field"], details=details) from None


def parse_spec(payload: Any) -> JobSpec:
    return parse_model(JobSpec, payload)


async def read_json(request: Request) -> Any:
    """The request's JSON body (empty reads as null)."""
    return parse_json(await request.body() or b"null")


async def read_json_spec(request: Request) -> JobSpec:
    return parse_spec(await read_json(request))


class _JobFormLimits:
    """Per-file checks while parts arrive: the profile comes from the `job` field when it came first."""

    def __init__(self, form: StreamingForm) -> None:
        self.form = form
        self.count = 0

    def __call__(self, field: str, filename: str) -> int:
        if field != "files":
            raise ValidationFailed(f"unexpected file field {field!r}; send files as 'files' parts", field=field)
        self.count += 1
        if self.count > get_settings().max_assets:
            raise ValidationFailed(f"at most {get_settings().max_assets} files per job", field="files")
        profile = self._profile()
        if profile is None:
            return max(p.max_upload_bytes for p in PROFILES.values())
        if not profile.accepts(filename):
            raise ValidationFailed(
                f"file {filename!r}: format not accepted by profile {profile.source}; "
                f"accepted: {', '.join(sorted(profile.accepted_formats))}",
                field="files",
            )
        return profile.max_upload_bytes

    def _profile(self) -> SkillProfile | None:
        raw = self.form.form.fields.get("job")
        if raw is None:
            return None
        try:
            payload = parse_json(raw, field="job")
            return get_profile(payload.get("profile")) if isinstance(payload, dict) else None
        except (ValidationFailed, ValueError):
            return None  # the `job` field itself is validated after the body is read


async def read_multipart_spec(request: Request) -> tuple[JobSpec, FormData]:
    settings = get_settings()
    form = StreamingForm(settings.effective_uploads_dir, lambda f, n: 0)
    form.limit_for = _JobFormLimits(form)
    data = await form.read(request)
    try:
        if "job" not in data.fields:
            raise ValidationFailed("multipart body needs a 'job' field holding the job's JSON", field="job")
        spec = parse_spec(parse_json(data.fields["job"], field="job"))
        profile = get_profile(spec.profile)
        for part in data.files:
            if not profile.accepts(part.filename):
                raise ValidationFailed(
                    f"file {part.filename!r}: format not accepted by {profile.source}", field="files"
                )
            if part.size > profile.max_upload_bytes:
                raise TooLarge(f"file {part.filename!r} is larger than {profile.max_upload_label}", field="files")
    except BaseException:
        data.cleanup()
        raise
    return spec, data
