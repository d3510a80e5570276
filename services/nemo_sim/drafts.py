"""The fake agent's work on a session's draft: a rough cut from the first prompt, then visible edits.

Draft keys are the upstream's short ones: ``t`` tracks, ``tt`` type (0 video, 1 audio, 7 text),
``n`` name, ``sg`` segments (``s`` start ms, ``d`` duration ms, ``n`` label, ``src`` media path, ``v`` volume,
``x`` text), ``d`` total ms, ``m`` metadata. Every message changes the draft and bumps the session's
``draft_version``.
"""

from __future__ import annotations

import copy
import random
import re
from pathlib import PurePosixPath
from typing import Any

from services.nemo_sim.records import Session

VIDEO, AUDIO, TEXT = 0, 1, 7
USERDATA = "/mnt/userdata"
IMAGE_MS, GENERATED_MS, MAX_CLIP_MS, TITLE_MS = 3000, 5000, 10000, 3000
BGM_LIBRARY = (
    "Lo-fi",
    "Cinematic Rise",
    "Upbeat Pop",
    "Ambient Piano",
    "Synthwave Drive",
    "Acoustic Morning",
)
_STOP_WORDS = frozenset(
    re.findall(
        r"\w+",
        "a an the and or of to for in on with into make turn this that my me please video clip add change "
        "set new use it is be from about",
    )
)
Draft = dict[str, Any]


def title_from(prompt: str) -> str:
    words = [w for w in re.findall(r"[\w'’-]+", prompt) if w.lower() not in _STOP_WORDS]
    return " ".join(w.capitalize() for w in words[:4]) or "Untitled"


def _track(draft: Draft, tt: int, name: str | None = None) -> dict[str, Any] | None:
    for track in draft["t"]:
        if track["tt"] == tt and (name is None or track["n"] == name):
            return track
    return None


def _relayout(draft: Draft) -> None:
    """Videos play back to back; BGM spans them; the total is the latest segment end."""
    video = _track(draft, VIDEO)
    start = 0
    for seg in video["sg"] if video else []:
        seg["s"], start = start, start + seg["d"]
    bgm = _track(draft, AUDIO, "BGM")
    if bgm and start:
        for seg in bgm["sg"]:
            seg["d"] = start
    draft["d"] = max((s["s"] + s["d"] for t in draft["t"] for s in t["sg"]), default=0)


def _clip(info: dict[str, Any]) -> dict[str, Any]:
    ms = IMAGE_MS
    if info["file_type"] != "image":
        ms = min(MAX_CLIP_MS, int(info["duration"] * 1000) or IMAGE_MS)
    label = PurePosixPath(info["filename"]).stem.replace("_", " ")
    return {"s": 0, "d": ms, "n": label, "src": f"{USERDATA}/{info['filename']}"}


def _generate_media(session: Session, prompt: str) -> list[dict[str, Any]]:
    made = []
    for n in (1, 2):
        name = f"gen_{session.session_id[-6:]}_{len(session.generated_media) + 1}.mp4"
        session.generated_media.append(
            {"filename": name, "file_type": "video", "duration": GENERATED_MS / 1000, "prompt": prompt[:200]}
        )
        label = f"{title_from(prompt)} shot {n}"
        made.append({"s": 0, "d": GENERATED_MS, "n": label, "src": f"{USERDATA}/{name}"})
    return made


def rough_cut(session: Session, prompt: str, rng: random.Random) -> tuple[Draft, str]:
    visuals = [v for v in session.video_infos if v["file_type"] in ("video", "image")]
    clips = [_clip(v) for v in visuals] or _generate_media(session, prompt)
    audio = next((v for v in session.video_infos if v["file_type"] == "audio"), None)
    bgm: dict[str, Any] = {"s": 0, "d": 0, "n": rng.choice(BGM_LIBRARY), "v": 35}
    if audio is not None:
        bgm.update(n=PurePosixPath(audio["filename"]).stem, src=f"{USERDATA}/{audio['filename']}")
    title = title_from(prompt)
    draft: Draft = {
        "t": [
            {"tt": VIDEO, "n": "Video", "sg": clips},
            {"tt": AUDIO, "n": "BGM", "sg": [bgm]},
            {"tt": TEXT, "n": "Title", "sg": [{"s": 0, "d": TITLE_MS, "n": "Title", "x": title}]},
        ],
        "d": 0,
        "m": {"title": title, "width": 1080, "height": 1920},
    }
    _relayout(draft)
    clips_label = f"{len(clips)} clip" + ("s" if len(clips) != 1 else "")
    return draft, f'a rough cut with {clips_label}, "{bgm["n"]}" as BGM at 35% and the title "{title}"'


def _bgm(draft: Draft, prompt: str, rng: random.Random) -> str:
    track = _track(draft, AUDIO, "BGM")
    if track is None:
        track = {"tt": AUDIO, "n": "BGM", "sg": []}
        draft["t"].append(track)
    current = track["sg"][0]["n"] if track["sg"] else None
    name = rng.choice([n for n in BGM_LIBRARY if n != current])
    volume = rng.choice((20, 25, 30, 40, 45, 50, 60))
    track["sg"] = [{"s": 0, "d": 0, "n": name, "v": volume}]
    return f'replaced the BGM with "{name}" at {volume}%'


def wanted_title(prompt: str) -> str:
    quoted = re.search(r"[\"“「](.+?)[\"”」]", prompt)
    after = re.search(r"title\s+(?:to|as|:)\s*(.+)", prompt, re.IGNORECASE)
    if quoted:
        return quoted.group(1).strip()[:60]
    return after.group(1).strip(" .!")[:60] if after else title_from(prompt)


def _title(draft: Draft, prompt: str, rng: random.Random) -> str:
    track = _track(draft, TEXT, "Title")
    if track is None:
        track = {"tt": TEXT, "n": "Title", "sg": [{"s": 0, "d": TITLE_MS, "n": "Title", "x": ""}]}
        draft["t"].append(track)
    title = wanted_title(prompt)
    if title == draft["m"].get("title"):
        title = f"{title} ({rng.choice(('Remix', 'Take 2', 'Final Cut', 'Extended'))})"
    track["sg"][0]["x"] = draft["m"]["title"] = title
    return f'changed the title to "{title}"'


def _trim(draft: Draft, prompt: str, rng: random.Random) -> str | None:
    video = _track(draft, VIDEO)
    if video is None or all(seg["d"] <= 1000 for seg in video["sg"]):
        return None
    for seg in video["sg"]:
        seg["d"] = max(1000, int(seg["d"] * 0.8))
    return f"trimmed the clips to {sum(s['d'] for s in video['sg']) / 1000:.1f}s"


def _captions(draft: Draft, prompt: str, rng: random.Random) -> str:
    words = re.findall(r"\S+", prompt) or ["…"]
    lines = [" ".join(words[i : i + 4]) for i in range(0, min(len(words), 24), 4)]
    segments = [{"s": i * 2000, "d": 2000, "n": f"Caption {i + 1}", "x": line} for i, line in enumerate(lines)]
    track = _track(draft, TEXT, "Captions")
    if track is None:
        draft["t"].append({"tt": TEXT, "n": "Captions", "sg": segments})
    else:
        track["sg"] = segments
    return f"added {len(segments)} caption{'s' if len(segments) > 1 else ''}"


def _new_clips(draft: Draft, session: Session) -> str | None:
    video = _track(draft, VIDEO)
    if video is None:
        video = {"tt": VIDEO, "n": "Video", "sg": []}
        draft["t"].insert(0, video)
    on_timeline = {seg.get("src") for seg in video["sg"]}
    fresh = [v for v in session.video_infos if v["file_type"] in ("video", "image")]
    fresh = [v for v in fresh if f"{USERDATA}/{v['filename']}" not in on_timeline]
    video["sg"].extend(_clip(v) for v in fresh)
    return f"added {len(fresh)} new clips to the video track" if fresh else None


_EDITS = (
    (("bgm", "music", "song", "soundtrack", "音乐"), _bgm),
    (("title", "标题", "heading", "rename"), _title),
    (("trim", "shorter", "shorten", "cut", "剪"), _trim),
    (("caption", "subtitle", "字幕"), _captions),
)
_ROTATION = (_bgm, _title, _captions, _trim)


def edit(session: Session, prompt: str, rng: random.Random) -> tuple[Draft, str]:
    """A changed copy of the session's draft and what changed (always something)."""
    draft = copy.deepcopy(session.draft)
    lowered = prompt.lower()
    picked = [fn for words, fn in _EDITS if any(w in lowered for w in words)]
    changes = [_new_clips(draft, session)]
    if not picked and changes[0] is None:
        picked = [_ROTATION[session.edits % len(_ROTATION)]]
    changes += [fn(draft, prompt, rng) for fn in picked]
    _relayout(draft)
    if draft == session.draft:  # e.g. a trim of clips already at the minimum
        changes.append(_bgm(draft, prompt, rng))
        _relayout(draft)
    return draft, "; ".join(c for c in changes if c)


def apply_message(session: Session, prompt: str, rng: random.Random) -> str:
    """Apply one message's edit to the session: new draft, version bumped. Returns what changed."""
    if session.draft is None:
        draft, change = rough_cut(session, prompt, rng)
    else:
        draft, change = edit(session, prompt, rng)
    session.draft = draft
    session.draft_version += 1
    session.edits += 1
    return change


def export_ready(draft: Any) -> bool:
    tracks = draft.get("t") if isinstance(draft, dict) else None
    return isinstance(tracks, list) and any(isinstance(t, dict) and t.get("sg") for t in tracks)
