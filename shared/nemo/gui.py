"""Translating the agent's GUI talk ("click Export", "打开轨道面板") into what reelmill does instead.

The backend writes as if the user sat at its editor. Each sentence that carries a GUI cue is rewritten to
reelmill's wording and yields one ``GuiAction``; other sentences pass through untouched. One cue per sentence,
the strongest first: export > timeline_summary > send_edit > query_state > execute (so "Click the Export
button" is an export, not a generic click). Cues are matched case-insensitively, in English and Chinese.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

ACTION_KINDS = ("export", "timeline_summary", "send_edit", "query_state", "execute")

_GUI_NOUNS = r"(?:panel|tab|menu|window|editor|timeline|settings|library|sidebar|dialog|view|tracks?|page|section)"
_CUES: dict[str, re.Pattern[str]] = {
    "export": re.compile(r"\bexport\b|导出", re.IGNORECASE),
    "timeline_summary": re.compile(
        r"\bpreview\b[^.!?]*\btimeline\b|\btimeline\b[^.!?]*\bpreview\b|时间线[^。！？]*预览|预览[^。！？]*时间线",
        re.IGNORECASE,
    ),
    "send_edit": re.compile(
        r"\bdrag(?:ging)?\b|\bdrag\s*(?:and|&|-and-)\s*drop\b|\bdrop\s+(?:it|them|the\s+\w+)\s+(?:in|into|onto|on)\b"
        r"|拖拽|拖动|拖放",
        re.IGNORECASE,
    ),
    "query_state": re.compile(
        rf"\bopen\s+(?:up\s+)?(?:the\s+|your\s+)?(?:[\w\"“”'-]+\s+){{0,3}}{_GUI_NOUNS}\b|打开", re.IGNORECASE
    ),
    "execute": re.compile(r"\b(?:click(?:ing)?|tap|press|hit)\b|点击|单击", re.IGNORECASE),
}
_BUTTON = re.compile(
    r"(?:click|tap|press|hit)\s+(?:on\s+)?(?:the\s+)?[\"“']?([\w][\w -]{0,30}?)[\"”']?\s+(?:button|icon|tab)\b"
    r"|(?:click|tap|press|hit)\s+(?:on\s+)?[\"“']([^\"”']{1,30})[\"”']",
    re.IGNORECASE,
)
_TARGETS: dict[str, re.Pattern[str]] = {
    "export": _BUTTON,
    "execute": _BUTTON,
    "query_state": re.compile(
        rf"open\s+(?:up\s+)?(?:the\s+|your\s+)?([\w\"“”' -]{{1,30}}?{_GUI_NOUNS})\b", re.IGNORECASE
    ),
}
_REWRITE = {
    "export": ("reelmill will export the video.", "reelmill 会为你导出视频。"),
    "timeline_summary": ("reelmill will include a summary of the timeline.", "reelmill 会附上时间线摘要。"),
    "send_edit": (
        "Describe the change you want and reelmill will send it as an edit.",
        "描述你想要的改动，reelmill 会替你发送编辑。",
    ),
    "query_state": ("reelmill will read the project's current state.", "reelmill 会读取项目的当前状态。"),
    "execute": ("reelmill will take care of that step through the API.", "reelmill 会通过 API 完成这一步。"),
}
_SPLIT = re.compile(r"((?<=[.!?])\s+|(?<=[。！？])|\n)")
_CJK = re.compile(r"[\u3400-\u9fff]")


@dataclass(frozen=True)
class GuiAction:
    kind: str  # one of ACTION_KINDS
    cue: str  # the words that triggered it, as written
    target: str | None = None  # the button or panel named, when one is
    sentence: str = ""  # the agent's original sentence


@dataclass(frozen=True)
class Translation:
    text: str
    actions: list[GuiAction] = field(default_factory=list)


def _target(kind: str, sentence: str) -> str | None:
    pattern = _TARGETS.get(kind)
    match = pattern.search(sentence) if pattern else None
    if not match:
        return None
    value = next((g for g in match.groups() if g), "")
    return value.strip(" \"“”'") or None


def classify(sentence: str) -> GuiAction | None:
    """The GUI action one sentence asks for, or ``None`` when it has no GUI cue."""
    for kind in ACTION_KINDS:
        match = _CUES[kind].search(sentence)
        if match:
            return GuiAction(kind, match.group(0), _target(kind, sentence), sentence.strip())
    return None


def translate(text: str) -> Translation:
    """``text`` with each GUI sentence rewritten to reelmill's wording, and the actions those sentences ask for."""
    pieces = _SPLIT.split(text)
    actions: list[GuiAction] = []
    seen: set[tuple[str, str | None]] = set()
    for i in range(0, len(pieces), 2):  # even items are sentences, odd items the separators between them
        action = classify(pieces[i])
        if action is None:
            continue
        english, chinese = _REWRITE[action.kind]
        pieces[i] = chinese if _CJK.search(pieces[i]) else english
        if (action.kind, action.target) not in seen:
            seen.add((action.kind, action.target))
            actions.append(action)
    return Translation(_dedupe_lines("".join(pieces)), actions)


def _dedupe_lines(text: str) -> str:
    """Collapse the same rewritten sentence repeated back to back ("Click Export. Export now." -> once)."""
    for english, chinese in _REWRITE.values():
        for sentence in (english, chinese):
            doubled = re.compile(re.escape(sentence) + r"(\s*" + re.escape(sentence) + r")+")
            text = doubled.sub(sentence, text)
    return text
