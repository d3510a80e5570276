"""parse_render_status over every documented shape."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.nemo.errors import ProtocolError
from shared.nemo.render_status import normalize_status, parse_render_status, parse_time

T0 = 1_700_000_000_000  # epoch ms


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (  # shape A
            {
                "success": True,
                "data": {
                    "id": "render_1",
                    "status": "completed",
                    "progress": 100,
                    "outputUrl": "http://x/out.mp4",
                    "createdAt": T0,
                    "completedAt": T0 + 5000,
                },
            },
            {"id": "render_1", "status": "completed", "progress": 100, "output_url": "http://x/out.mp4", "done": True},
        ),
        (  # shape B
            {
                "taskId": "render_2",
                "status": "completed",
                "progress": 100,
                "output": {"url": "http://x/b.mp4", "duration": 5.0, "size": 1234},
            },
            {"id": "render_2", "status": "completed", "output_url": "http://x/b.mp4", "duration": 5.0, "size": 1234},
        ),
        (  # B inside the code envelope
            {"code": 0, "data": {"taskId": "render_3", "status": "processing", "progress": 40.6}},
            {"id": "render_3", "status": "processing", "progress": 41, "done": False, "output_url": None},
        ),
        (  # submit reply
            {"success": True, "data": {"id": "render_4", "status": "pending", "progress": 5}},
            {"id": "render_4", "status": "pending", "progress": 5, "done": False},
        ),
        (  # cancel reply: no progress
            {"success": True, "data": {"id": "render_5", "status": "cancelled"}},
            {"status": "canceled", "progress": 0, "done": True},
        ),
        (  # failure with an error message
            {"success": True, "data": {"id": "render_6", "status": "failed", "progress": 60, "error": "gpu node lost"}},
            {"status": "failed", "error": "gpu node lost", "done": True},
        ),
        (  # failure without one, error as object
            {"taskId": "render_7", "status": "error", "error": {"message": "codec"}},
            {"status": "failed", "error": "codec"},
        ),
        ({"taskId": "render_8", "status": "FAILED"}, {"status": "failed", "error": "render failed"}),
        ({"taskId": "render_9", "status": "completed"}, {"progress": 100}),
        ({"taskId": "render_10", "status": "queued", "progress": 150}, {"status": "pending", "progress": 100}),
        ({"taskId": "render_11", "status": "warming_up", "progress": "x"}, {"status": "processing", "progress": 0}),
    ],
)
def test_shapes(body, expected):
    status = parse_render_status(body)
    for key, value in expected.items():
        assert getattr(status, key) == value, key
    assert status.raw == body


def test_shape_a_times_are_epoch_ms():
    status = parse_render_status(
        {"success": True, "data": {"id": "r", "status": "completed", "createdAt": T0, "completedAt": T0 + 5000}}
    )
    assert status.created_at == datetime.fromtimestamp(T0 / 1000, tz=UTC)
    assert (status.completed_at - status.created_at).total_seconds() == 5


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (T0, datetime.fromtimestamp(T0 / 1000, tz=UTC)),
        (T0 / 1000, datetime.fromtimestamp(T0 / 1000, tz=UTC)),
        (str(T0), datetime.fromtimestamp(T0 / 1000, tz=UTC)),
        ("2026-01-02T03:04:05Z", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2026-01-02T03:04:05", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
        (None, None),
        ("", None),
        ("not a date", None),
        (True, None),
        ([], None),
    ],
)
def test_parse_time(value, expected):
    assert parse_time(value) == expected


@pytest.mark.parametrize(
    "body",
    [
        {"success": True, "data": {"status": "pending"}},
        {"taskId": "r"},
        {"taskId": "r", "status": ""},
        ["not", "a", "dict"],
    ],
)
def test_unreadable_replies(body):
    with pytest.raises(ProtocolError):
        parse_render_status(body)


@pytest.mark.parametrize(
    ("raw", "norm"),
    [
        ("pending", "pending"),
        ("Processing", "processing"),
        ("in-progress", "processing"),
        ("succeeded", "completed"),
        ("done", "completed"),
        ("cancelled", "canceled"),
        ("Failed", "failed"),
    ],
)
def test_normalize_status(raw, norm):
    assert normalize_status(raw) == norm
