"""GUI translation: the agent's GUI wording rewritten to what reelmill does, with actions."""

from __future__ import annotations

import pytest

from shared.nemo.gui import classify, translate

CASES = [
    # text, expected translated text, expected action kinds
    ("Click the Export button to render.", "reelmill will export the video.", ["export"]),
    ("click the export button", "reelmill will export the video.", ["export"]),
    ("点击导出即可渲染。", "reelmill 会为你导出视频。", ["export"]),
    ("Open the Tracks panel to check the layers.", "reelmill will read the project's current state.", ["query_state"]),
    ("请打开轨道面板。", "reelmill 会读取项目的当前状态。", ["query_state"]),
    (
        "Drag the clip to the start of the timeline.",
        "Describe the change you want and reelmill will send it as an edit.",
        ["send_edit"],
    ),
    ("把片段拖拽到开头。", "描述你想要的改动，reelmill 会替你发送编辑。", ["send_edit"]),
    (
        "Preview in timeline to check the pacing.",
        "reelmill will include a summary of the timeline.",
        ["timeline_summary"],
    ),
    ("Click Apply to confirm.", "reelmill will take care of that step through the API.", ["execute"]),
    ("点击应用。", "reelmill 会通过 API 完成这一步。", ["execute"]),
    ("I added lo-fi BGM at 35% volume.", "I added lo-fi BGM at 35% volume.", []),
    ("The door is open and light falls in.", "The door is open and light falls in.", []),
    (
        "Your cut is 1.5s longer now. Click the Export button to render it.",
        "Your cut is 1.5s longer now. reelmill will export the video.",
        ["export"],
    ),
    (
        "Done!\nOpen the timeline panel, then drag the title up.\nPreview in timeline.",
        "Done!\nDescribe the change you want and reelmill will send it as an edit.\n"
        "reelmill will include a summary of the timeline.",
        ["send_edit", "timeline_summary"],
    ),
    ("Click Export. CLICK EXPORT.", "reelmill will export the video.", ["export"]),
]


@pytest.mark.parametrize(("text", "out", "kinds"), CASES)
def test_translate(text, out, kinds):
    result = translate(text)
    assert result.text == out
    assert [a.kind for a in result.actions] == kinds


@pytest.mark.parametrize(
    ("sentence", "kind", "target"),
    [
        ("Click the Export button to render", "export", "Export"),
        ('Click "Apply" to confirm', "execute", "Apply"),
        ("Tap the Save icon", "execute", "Save"),
        ("Open the Tracks panel", "query_state", "Tracks panel"),
        ("Open up your media library", "query_state", "media library"),
        ("Drag and drop the logo", "send_edit", None),
        ("Drop it onto the second track", "send_edit", None),
        ("Press play", "execute", None),
    ],
)
def test_classify_targets(sentence, kind, target):
    action = classify(sentence)
    assert (action.kind, action.target) == (kind, target)
    assert action.sentence == sentence and action.cue


def test_no_cue_no_action():
    assert classify("A fox runs through snow.") is None
    assert translate("").text == "" and translate("").actions == []
