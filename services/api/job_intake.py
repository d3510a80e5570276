"""Reading a `POST /v1/jobs` body: JSON, or multipart with a `job` JSON field and `files` parts streamed to disk."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from pydantic import ValidationError

from services.api.errors import validation_details
from services.api.multipart import FormData, StreamingForm
from shared.domain.errors import TooLarge, ValidationFailed
from shared.domain.job_input import JobSpec
from shared.nemo.profiles import PROFILES, get_profile
from shared.settings import get_settings


def parse_spec(payload: Any) -> JobSpec:
    if not isinstance(payload, dict):
        raise ValidationFailed("the body must be a JSON object", field="body")
    try:
        return JobSpec.model_validate(payload)
    except ValidationError as exc:
        details = validation_details(list(exc.errors()))
        first = details[0]
        raise ValidationFailed(f"{first['field']}: {first['message']}", field=first["field"], details=details) from None


async def read_json_spec(request: Request) -> JobSpec:
    try:
        payload = json.loads(await request.body() or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValidationFailed(f"the body is not valid JSON: {exc}", field="body") from None
    return parse_spec(payload)


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

    def _profile(self):
        raw = self.form.form.fields.get("job")
        if raw is None:
            return None
        try:
            return get_profile(json.loads(raw).get("profile"))
        except (ValueError, AttributeError):
            return None  # the `job` field itself is validated after the body is read


async def read_multipart_spec(request: Request) -> tuple[JobSpec, FormData]:
    settings = get_settings()
    form = StreamingForm(settings.effective_uploads_dir, lambda f, n: 0)
    form.limit_for = _JobFormLimits(form)
    data = await form.read(request)
    try:
        if "job" not in data.fields:
            raise ValidationFailed("multipart body needs a 'job' field holding the job's JSON", field="job")
        try:
            spec = parse_spec(json.loads(data.fields["job"]))
        except json.JSONDecodeError as exc:
            raise ValidationFailed(f"the 'job' field is not valid JSON: {exc}", field="job") from None
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
