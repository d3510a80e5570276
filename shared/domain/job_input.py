"""What a client may ask for: the job request, validated the same way for JSON, multipart and CSV rows.

Every rule names its field and its limit, so a 422 tells the client exactly what to change.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shared.nemo.profiles import DEFAULT_PROFILE, PROFILES, get_profile
from shared.settings import get_settings
from shared.urlguard import ForbiddenUrl, check_url

OUTPUT_FORMATS = ("mp4",)
OUTPUT_QUALITIES = ("low", "medium", "high")
EVENT_FILTERS = ("start", "progress", "completed", "artifact")
LANGUAGE_RE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
MAX_STEPS = 20


def check_asset_url(url: str, profile_name: str) -> str:
    """An asset URL must pass the outbound guard and, when its path names a format, be one the profile takes."""
    check_url(url)
    profile = get_profile(profile_name)
    path = url.split("?", 1)[0].split("#", 1)[0].rsplit("/", 1)[-1]
    fmt = profile.format_of(path)
    if "." in path and fmt and fmt not in profile.accepted_formats:
        raise ValueError(
            f"format {fmt!r} is not accepted by profile {profile.source}; "
            f"accepted: {', '.join(sorted(profile.accepted_formats))}"
        )
    return url


class OutputSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: Literal["mp4"] = "mp4"
    quality: Literal["low", "medium", "high"] = "high"


class StepSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1)
    assets: list[str] = Field(default_factory=list)

    @field_validator("text")
    @classmethod
    def _text(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        if len(value) > get_settings().max_prompt_chars:
            raise ValueError(f"is longer than {get_settings().max_prompt_chars} characters")
        return value.strip()


class JobSpec(BaseModel):
    """The body of `POST /v1/jobs` (and the `job` part of its multipart form)."""

    model_config = ConfigDict(extra="forbid")

    profile: str = DEFAULT_PROFILE
    prompt: str | None = None
    assets: list[str] = Field(default_factory=list)
    output: OutputSpec = Field(default_factory=OutputSpec)
    language: str = "en"
    webhook: str | None = None
    webhook_events_filter: list[str] = Field(default_factory=lambda: ["start", "completed"])
    metadata: dict[str, Any] = Field(default_factory=dict)
    steps: list[StepSpec] = Field(default_factory=list)
    priority: Literal["high", "normal", "low"] = "normal"  # within the tenant's share: high starts first

    @field_validator("profile")
    @classmethod
    def _profile(cls, value: str) -> str:
        if value not in PROFILES:
            raise ValueError(f"unknown profile {value!r}; known profiles: {', '.join(sorted(PROFILES))}")
        return value

    @field_validator("prompt")
    @classmethod
    def _prompt(cls, value: str | None) -> str | None:
        if value is None:
            return None
        limit = get_settings().max_prompt_chars
        if not value.strip():
            raise ValueError("must not be blank")
        if len(value) > limit:
            raise ValueError(f"is longer than {limit} characters")
        return value.strip()

    @field_validator("language")
    @classmethod
    def _language(cls, value: str) -> str:
        if not LANGUAGE_RE.match(value):
            raise ValueError("must be a language tag such as 'en', 'zh' or 'pt-BR'")
        return value

    @field_validator("webhook")
    @classmethod
    def _webhook(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return check_url(value)
        except ForbiddenUrl as exc:
            raise ValueError(exc.reason) from None

    @field_validator("webhook_events_filter")
    @classmethod
    def _filter(cls, value: list[str]) -> list[str]:
        bad = [v for v in value if v not in EVENT_FILTERS]
        if bad:
            raise ValueError(f"unknown event filter {bad[0]!r}; choose from {', '.join(EVENT_FILTERS)}")
        return sorted(set(value), key=EVENT_FILTERS.index)

    @field_validator("metadata")
    @classmethod
    def _metadata(cls, value: dict[str, Any]) -> dict[str, Any]:
        limit = get_settings().max_metadata_bytes
        if len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()) > limit:
            raise ValueError(f"is larger than {limit} bytes of JSON")
        return value

    @model_validator(mode="after")
    def _whole(self) -> JobSpec:
        settings = get_settings()
        if self.prompt is None and not self.steps:
            raise ValueError("prompt: field required (or give steps)")
        if len(self.steps) > MAX_STEPS:
            raise ValueError(f"steps: at most {MAX_STEPS} steps per job")
        if self.prompt is None:
            self.prompt = self.steps[0].text
        all_assets = [("assets", i, u) for i, u in enumerate(self.assets)] + [
            (f"steps[{s}].assets", i, u) for s, step in enumerate(self.steps) for i, u in enumerate(step.assets)
        ]
        if len(all_assets) > settings.max_assets:
            raise ValueError(f"assets: at most {settings.max_assets} assets per job")
        for field, i, url in all_assets:
            try:
                check_asset_url(url, self.profile)
            except ValueError as exc:
                reason = exc.reason if isinstance(exc, ForbiddenUrl) else str(exc)
                raise ValueError(f"{field}[{i}]: {reason}") from None
        return self

    def turns(self) -> list[tuple[str, list[str]]]:
        """The job's work as (instruction, assets) pairs: its steps, or the prompt with its assets."""
        if self.steps:
            first = [(self.steps[0].text, [*self.assets, *self.steps[0].assets])]
            return first + [(s.text, list(s.assets)) for s in self.steps[1:]]
        return [(self.prompt or "", list(self.assets))]

    def canonical_hash(self, extra: str = "") -> str:
        import hashlib

        body = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256((body + extra).encode()).hexdigest()
