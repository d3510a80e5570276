"""The two skill profiles the project grew from (``../shared/seeds``), as data.

A profile decides the attribution headers (``X-Skill-Source``/``-Version``/``-Platform``), the upload size
limit and the formats a job may carry. Both seeds list the same backend-wide formats; they differ in the
limit (500 MB vs 20 MB) and in the formats they recommend.
"""

from __future__ import annotations

from dataclasses import dataclass

BACKEND_FORMATS: frozenset[str] = frozenset(
    {"mp4", "mov", "avi", "webm", "mkv", "jpg", "png", "gif", "webp", "mp3", "wav", "m4a", "aac"}
)
# "jpeg" is how many files spell jpg; the backend files them the same way.
FORMAT_ALIASES: dict[str, str] = {"jpeg": "jpg"}

MB = 1024 * 1024


@dataclass(frozen=True)
class SkillProfile:
    source: str  # X-Skill-Source, also the profile's name in reelmill's API
    title: str
    version: str  # X-Skill-Version (the seed's frontmatter `version`)
    max_upload_bytes: int
    accepted_formats: frozenset[str]
    preferred_formats: tuple[str, ...]
    input_kind: str  # what the seed takes, for docs and `reelmill` help

    def attribution_headers(self, platform: str = "unknown") -> dict[str, str]:
        return {
            "X-Skill-Source": self.source,
            "X-Skill-Version": self.version,
            "X-Skill-Platform": platform,
        }

    def format_of(self, filename: str) -> str:
        """The lower-case extension of ``filename`` as the backend names formats ("" when none)."""
        name = filename.rstrip("/").rsplit("/", 1)[-1]
        dot = name.rfind(".")  # PurePath.suffix's rule, without building a path (a batch asks 100,000 times)
        ext = name[dot + 1 :].lower() if 0 < dot < len(name) - 1 else ""
        return FORMAT_ALIASES.get(ext, ext)

    def accepts(self, filename: str) -> bool:
        return self.format_of(filename) in self.accepted_formats

    @property
    def max_upload_label(self) -> str:
        return f"{self.max_upload_bytes // MB} MB"


KAPWING = SkillProfile(
    source="ai-video-generator-free-kapwing",
    title="AI Video Generator Free Kapwing",
    version="1.0.0",
    max_upload_bytes=500 * MB,
    accepted_formats=BACKEND_FORMATS,
    preferred_formats=("mp4", "mov", "webm", "gif"),
    input_kind="a blog post or script (~200 words) or clips -> 1080p MP4 with visuals and captions",
)

KLING = SkillProfile(
    source="free-kling-ai-video-generation",
    title="Free Kling AI Video Generation",
    version="1.0.0",
    max_upload_bytes=20 * MB,
    accepted_formats=BACKEND_FORMATS,
    preferred_formats=("jpg", "png", "webp", "mp4"),
    input_kind="a text prompt or an image -> a ~5 s cinematic 1080p MP4 clip",
)

PROFILES: dict[str, SkillProfile] = {p.source: p for p in (KAPWING, KLING)}
DEFAULT_PROFILE = KAPWING.source


class UnknownProfileError(ValueError):
    def __init__(self, name: str) -> None:
        self.name = name
        self.known = sorted(PROFILES)
        super().__init__(f"unknown profile {name!r}; known profiles: {', '.join(self.known)}")


def get_profile(name: str | SkillProfile | None = None) -> SkillProfile:
    """The profile named ``name`` (a seed's skill source name); the default profile for ``None``."""
    if isinstance(name, SkillProfile):
        return name
    if name is None:
        return PROFILES[DEFAULT_PROFILE]
    try:
        return PROFILES[name]
    except KeyError:
        raise UnknownProfileError(name) from None
