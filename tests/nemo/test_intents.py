"""route_intent: short commands skip SSE; creative or long requests go to the agent."""

from __future__ import annotations

import pytest

from shared.nemo.intents import Intent, command_length, route_intent

CASES = [
    # the seeds' table
    ("export", Intent.EXPORT),
    ("导出", Intent.EXPORT),
    ("download", Intent.EXPORT),
    ("send me the video", Intent.EXPORT),
    ("credits", Intent.CREDITS),
    ("积分", Intent.CREDITS),
    ("balance", Intent.CREDITS),
    ("余额", Intent.CREDITS),
    ("status", Intent.STATE),
    ("状态", Intent.STATE),
    ("show tracks", Intent.STATE),
    ("upload", Intent.UPLOAD),
    ("上传", Intent.UPLOAD),
    # short commands with a little more
    ("export 1080p MP4", Intent.EXPORT),
    ("Export it please!", Intent.EXPORT),
    ("Download the final video", Intent.EXPORT),
    ("please send me the video now", Intent.EXPORT),
    ("how many credits do I have left?", Intent.CREDITS),
    ("what's my balance", Intent.CREDITS),
    ("查看我的积分余额", Intent.CREDITS),
    ("show me the tracks", Intent.STATE),
    ("what is the status of my project", Intent.STATE),
    ("I want to upload a clip", Intent.UPLOAD),
    ("帮我导出视频", Intent.EXPORT),
    ("export status", Intent.EXPORT),
    ("status of my export", Intent.STATE),
    # creative requests that mention a cue: SSE
    ("generate a video and add a download link", Intent.SSE),
    ("add BGM", Intent.SSE),
    ("make a 5-second clip of a fox and export it", Intent.SSE),
    ("export with captions", Intent.SSE),
    ("turn this script into a short video with visuals and captions", Intent.SSE),
    ("生成一个视频并添加下载链接", Intent.SSE),
    ("edit the status bar scene", Intent.SSE),
    ("a fox running through a snowy forest at dusk, the camera slowly tracks it, then export", Intent.SSE),
    # no cue
    ("a fox running through a snowy forest at dusk", Intent.SSE),
    ("make it look better", Intent.SSE),
    ("exporter", Intent.SSE),
    ("", Intent.SSE),
    ("   ", Intent.SSE),
]


@pytest.mark.parametrize(("text", "intent"), CASES)
def test_route_intent(text, intent):
    assert route_intent(text) is intent


def test_files_without_text_are_an_upload():
    assert route_intent("", has_files=True) is Intent.UPLOAD
    assert route_intent("make a video from this", has_files=True) is Intent.SSE


def test_skips_sse():
    assert [i.skips_sse for i in Intent] == [True, True, True, True, False]
    assert Intent("export") is Intent.EXPORT and Intent.EXPORT == "export"


@pytest.mark.parametrize(
    ("text", "n"), [("export 1080p MP4", 3), ("导出", 1), ("查看我的积分余额", 4), ("hi 导出视频", 3), ("", 0)]
)
def test_command_length(text, n):
    assert command_length(text.lower()) == n
