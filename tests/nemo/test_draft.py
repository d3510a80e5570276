"""Draft helpers: export readiness, readable tracks, the seeds' summary format, fingerprints."""

from __future__ import annotations

import pytest

from shared.nemo.draft import EMPTY_DRAFT, draft_fingerprint, is_export_ready, timeline_summary, tracks

SEED_DRAFT = {
    "t": [
        {"tt": 0, "n": "Video", "sg": [{"s": 0, "d": 10000, "n": "city timelapse", "src": "/mnt/userdata/city.mp4"}]},
        {"tt": 1, "n": "BGM", "sg": [{"s": 0, "d": 10000, "n": "Lo-fi", "v": 35}]},
        {"tt": 7, "n": "Title", "sg": [{"s": 0, "d": 3000, "x": "Urban Dreams"}]},
    ],
    "d": 10000,
    "m": {"title": "Urban Dreams", "width": 1080, "height": 1920},
}
SEED_SUMMARY = (
    'Timeline (3 tracks): 1. Video: city timelapse (0-10s) 2. BGM: Lo-fi (0-10s, 35%) 3. Title: "Urban Dreams" (0-3s)'
)


def test_summary_matches_the_seed_exactly():
    assert timeline_summary(SEED_DRAFT) == SEED_SUMMARY


@pytest.mark.parametrize(
    ("draft", "summary"),
    [
        (None, "Timeline (0 tracks): empty"),
        ({}, "Timeline (0 tracks): empty"),
        ({"t": "nonsense"}, "Timeline (0 tracks): empty"),
        ({"t": [{"tt": 0, "sg": []}]}, "Timeline (1 track): 1. Video: (empty)"),
        (
            {
                "t": [
                    {
                        "tt": 0,
                        "sg": [{"s": 0, "d": 2500, "src": "/mnt/userdata/a.mp4"}, {"s": 2500, "d": 2500, "n": "b"}],
                    }
                ]
            },
            "Timeline (1 track): 1. Video: a.mp4 (0-2.5s), b (2.5-5s)",
        ),
        (
            {"t": [{"tt": 1, "sg": [{"d": 1000}]}, {"tt": 42, "n": "FX", "sg": [{"s": "x", "d": None}]}]},
            "Timeline (2 tracks): 1. Audio: untitled (0-1s) 2. FX: untitled (0-0s)",
        ),
        (
            {"t": [{"tt": 7, "sg": [{"s": 1000, "d": 1000, "n": "caption"}]}, "junk"]},
            "Timeline (1 track): 1. Text: caption (1-2s)",
        ),
        (
            {"t": [{"tt": 1, "n": "BGM", "sg": [{"s": 0, "d": 4000, "n": "Jazz", "v": 80.4}]}]},
            "Timeline (1 track): 1. BGM: Jazz (0-4s, 80%)",
        ),
    ],
)
def test_summary_tolerates_missing_keys(draft, summary):
    assert timeline_summary(draft) == summary


def test_tracks_are_readable_json():
    out = tracks(SEED_DRAFT)
    assert [(t["index"], t["type"], t["name"]) for t in out] == [
        (1, "video", "Video"),
        (2, "audio", "BGM"),
        (3, "text", "Title"),
    ]
    assert out[0]["segments"][0] == {
        "start_s": 0.0,
        "end_s": 10.0,
        "label": "city timelapse",
        "volume": None,
        "text": None,
        "src": "/mnt/userdata/city.mp4",
    }
    assert out[1]["segments"][0]["volume"] == 35
    assert out[2]["segments"][0]["text"] == "Urban Dreams"
    assert tracks({"t": [{"tt": True, "sg": [{"v": True}]}]})[0]["type"] == "other"


@pytest.mark.parametrize(
    ("draft", "ready"),
    [
        (SEED_DRAFT, True),
        (None, False),
        ({}, False),
        ({"t": []}, False),
        ({"t": [{"tt": 0, "sg": []}]}, False),
        ({"t": [{"tt": 0}, {"tt": 1, "sg": [{}]}]}, True),
        ({"t": [{"sg": "x"}]}, False),
        ("draft", False),
    ],
)
def test_export_ready(draft, ready):
    assert is_export_ready(draft) is ready


def test_fingerprint_is_stable_and_sensitive():
    reordered = {"m": SEED_DRAFT["m"], "d": 10000, "t": SEED_DRAFT["t"]}
    assert draft_fingerprint(SEED_DRAFT) == draft_fingerprint(reordered)
    edited = {**SEED_DRAFT, "d": 11000}
    assert draft_fingerprint(SEED_DRAFT) != draft_fingerprint(edited)
    # every empty form is the one empty draft: a fresh session's `{}` is no edit (issue 10, defect 1)
    assert draft_fingerprint(None) == draft_fingerprint({}) == draft_fingerprint({"t": []}) == EMPTY_DRAFT
    assert draft_fingerprint({"t": [{"tt": 0, "sg": []}], "d": 0, "m": {"width": 1920}}) == EMPTY_DRAFT
    assert len(draft_fingerprint(SEED_DRAFT)) == 32
