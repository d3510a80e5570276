"""Parsing successful replies into models; unreadable ones are ProtocolError."""

from __future__ import annotations

import pytest

from shared.nemo.errors import ProtocolError
from shared.nemo.replies import parse_anonymous_token, parse_credits, parse_session, parse_state, parse_uploaded


@pytest.mark.parametrize(
    ("parse", "body"),
    [
        (parse_session, {"code": 0}),
        (parse_session, {"code": 0, "data": []}),
        (parse_session, {"code": 0, "data": {"task_id": "t"}}),
        (parse_anonymous_token, {"code": 0, "data": {"user_id": "anon_1"}}),
        (parse_uploaded, {"code": 0, "data": {"files": "nope"}}),
        (parse_uploaded, {"code": 0, "data": {"files": ["nope"]}}),
        (parse_credits, {"code": 0, "data": {"available": "lots"}}),
        (parse_credits, "not json"),
    ],
)
def test_unreadable(parse, body):
    with pytest.raises(ProtocolError):
        parse(body)


def test_lenient_fields():
    files = parse_uploaded(
        {
            "code": 0,
            "data": {"files": [{"filename": "a.mp4", "duration": "x", "width": "1080", "fps": None, "hash": ""}]},
        }
    )
    assert (files[0].duration, files[0].width, files[0].fps, files[0].hash) == (None, 1080, None, None)
    credits = parse_credits({"code": 0, "data": {"available": 7, "frozen": "3"}})
    assert (credits.available, credits.frozen, credits.total) == (7, 3, 10)
    state = parse_state({"code": 0, "data": {"state": {"draft": "junk", "video_infos": None}}}, "sid-1")
    assert (state.session_id, state.task_id, state.draft, state.video_infos, state.canvas_config) == (
        "sid-1",
        None,
        None,
        [],
        None,
    )
    token = parse_anonymous_token({"code": 0, "data": {"token": "nmv_x", "user_id": "anon_1", "credits": 100}})
    assert token.expires_at is not None and token.credits == 100
