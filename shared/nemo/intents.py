"""Routing a user's message the way the seeds' "Matching Input to Actions" table does.

The rule: a message is a direct action (no SSE) only when it is a short command: at most ``MAX_COMMAND_WORDS``
words (two CJK characters count as one word), it names an action cue, and it asks for no creative work (no
generate / add / edit / 生成 / 添加 ...). Everything else, including a long creative request that merely
mentions "download" or "status", goes to the agent over SSE. With several cues, the earliest one wins.
"""

from __future__ import annotations

import math
import re
from enum import StrEnum


class Intent(StrEnum):
    EXPORT = "export"
    CREDITS = "credits"
    STATE = "state"
    UPLOAD = "upload"
    SSE = "sse"

    @property
    def skips_sse(self) -> bool:
        return self is not Intent.SSE


MAX_COMMAND_WORDS = 8

_CUES: dict[Intent, re.Pattern[str]] = {
    Intent.EXPORT: re.compile(
        r"\bexport(?:s|ed|ing)?\b|\bdownload(?:s|ed|ing)?\b|\bsend\s+me\s+(?:the\s+|my\s+)?(?:final\s+)?"
        r"video\b|导出|下载"
    ),
    Intent.CREDITS: re.compile(r"\bcredits?\b|\bbalance\b|积分|余额"),
    Intent.STATE: re.compile(r"\bstatus\b|\bshow\s+(?:me\s+)?(?:the\s+|my\s+)?tracks\b|状态"),
    Intent.UPLOAD: re.compile(r"\bupload(?:s|ed|ing)?\b|上传"),
}
_CREATIVE = re.compile(
    r"\b(?:generate|create|make|add|edit|turn|trim|cut|replace|change|remove|insert|put|write|animate|"
    r"crop|merge|combine|split|mute|speed|slow|caption|subtitle)\w*\b|生成|添加|加上|加入|制作|剪辑|替换|修改|删除|配乐"
)
_LATIN_WORD = re.compile(r"[a-z0-9][a-z0-9'’\-]*")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


def command_length(text: str) -> int:
    """Words in ``text``; two CJK characters count as one word."""
    return len(_LATIN_WORD.findall(text)) + math.ceil(len(_CJK.findall(text)) / 2)


def route_intent(text: str, *, has_files: bool = False) -> Intent:
    """The action for one user message (see the module docstring for the rule)."""
    norm = " ".join(text.lower().split())
    if not norm:
        return Intent.UPLOAD if has_files else Intent.SSE
    if command_length(norm) > MAX_COMMAND_WORDS or _CREATIVE.search(norm):
        return Intent.SSE
    hits = [(m.start(), intent) for intent, pattern in _CUES.items() if (m := pattern.search(norm))]
    if not hits:
        return Intent.SSE
    return min(hits, key=lambda hit: hit[0])[1]
