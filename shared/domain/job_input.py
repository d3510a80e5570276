"""What a client may ask for: the job request, validated the same way for JSON, multipart and CSV rows.

Every rule names its field and its limit, so a 422 tells the client exactly what to change.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from shared.nemo.profiles import DEFAULT_PROFILE, PROFILES, get_profile
from shared.settings import get_settings
from shared.urlguard import ForbiddenUrl, check_static

OUTPUT_FORMATS = ("mp4",)
OUTPUT_QUALITIES = ("low", "medium", "high")
EVENT_FILTERS = ("start", "progress", "completed", "artifact")
LANGUAGE_RE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
MAX_STEPS = 20
# What the OpenAPI document says of the fields (the validators below are the rule; these guide clients and
# generated tests to values that can pass).
URL_SCHEMA = {"type": "string", "pattern": r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[^\s]*)?$", "maxLength": 2048}
TEXT_SCHEMA = {"pattern": r"\S", "maxLength": 10_000}


def check_asset_url(url: str, profile_name: str | None) -> str:
    """An asset URL must pass the outbound guard's static checks (NemoVideo fetches it, so its host is not
    resolved here) and, when its path names a format, be one the profile takes."""
    try:
        check_static(url)
    except ForbiddenUrl as exc:
        raise ValueError(exc.reason) from None
    if profile_name not in PROFILES:
        return url  # the profile's own error is reported
    profile = get_profile(profile_name)
    path = url.split("?", 1)[0].split("#", 1)[0].rsplit("/", 1)[-1]
    fmt = profile.format_of(path)
    if "." in path and fmt and fmt not in profile.accepted_formats:
        raise ValueError(
            f"format {fmt!r} is not accepted by profile {profile.source}; "
            f"accepted: {', '.join(sorted(profile.accepted_formats))}"
        )
    return url


def _asset(url: str, info: ValidationInfo) -> str:
    return check_asset_url(url, (info.data or {}).get("profile", DEFAULT_PROFILE))


AssetUrl = Annotated[str, AfterValidator(_asset)]


class OutputSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: Literal["mp4"] = "mp4"
    quality: Literal["low", "medium", "high"] = "high"


class StepSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, json_schema_extra=TEXT_SCHEMA)
    assets: list[str] = Field(default_factory=list, json_schema_extra={"items": URL_SCHEMA, "maxItems": 20})

    @field_validator("text")
    @classmethod
    def _text(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        if len(value) > get_settings().max_prompt_chars:
            raise ValueError(f"is longer than {get_settings().max_prompt_chars} characters")
        return value.strip()


def _only(schema: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    """A field that accepts null but is documented as ``schema`` alone (so that generated requests send a value),
    without its null default, which would not be valid against it."""

    def edit(field: dict[str, Any]) -> None:
        field.pop("default", None)
        field["anyOf"] = [schema]

    return edit


class JobSpec(BaseModel):
    """The body of `POST /v1/jobs` (and the `job` part of its multipart form)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"prompt": "a paper boat sailing down a rainy street, 15 seconds"}],
            # prompt, or steps: as if/then rather than a top-level anyOf, which client generators read as "any"
            "if": {"not": {"required": ["steps"]}},
            "then": {"required": ["prompt"]},
        },
    )

    profile: str = Field(default=DEFAULT_PROFILE, json_schema_extra={"enum": sorted(PROFILES)})
    prompt: str | None = Field(default=None, json_schema_extra=_only({"type": "string", **TEXT_SCHEMA}))
    assets: list[AssetUrl] = Field(default_factory=list, json_schema_extra={"items": URL_SCHEMA, "maxItems": 20})
    output: OutputSpec = Field(default_factory=OutputSpec)
    language: str = Field(default="en", json_schema_extra={"pattern": LANGUAGE_RE.pattern, "maxLength": 16})
    webhook: str | None = Field(default=None, json_schema_extra=_only(URL_SCHEMA))
    webhook_events_filter: list[str] = Field(
        default_factory=lambda: ["start", "completed"], json_schema_extra={"items": {"enum": list(EVENT_FILTERS)}}
    )
    metadata: dict[str, Any] = Field(default_factory=dict)
    steps: list[StepSpec] = Field(default_factory=list, json_schema_extra={"maxItems": MAX_STEPS})
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
        if not LANGUAGE_RE.match(value) or len(value) > 16:
            raise ValueError("must be a language tag such as 'en', 'zh' or 'pt-BR' (at most 16 characters)")
        return value

    @field_validator("webhook")
    @classmethod
    def _webhook(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:  # syntax only: the host is resolved (and checked again) when a webhook is sent
            return check_static(value)
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
        max_steps = min(MAX_STEPS, settings.max_turns_per_job)
        if len(self.steps) > max_steps:
            raise ValueError(f"steps: at most {max_steps} steps per job")
        if self.prompt is None:
            self.prompt = self.steps[0].text
        step_assets = [(s, i, u) for s, step in enumerate(self.steps) for i, u in enumerate(step.assets)]
        if len(self.assets) + len(step_assets) > settings.max_assets:
            raise ValueError(f"assets: at most {settings.max_assets} assets per job")
        for s, i, url in step_assets:  # a step does not know the profile: its URLs are checked here
            try:
                check_asset_url(url, self.profile)
            except ValueError as exc:
                raise ValueError(f"steps[{s}].assets[{i}]: {exc}") from None
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
