"""error_from_reply and the error tree, table-driven."""

from __future__ import annotations

import email.utils
import time
from datetime import UTC, datetime

import pytest

from shared.nemo import errors as e
from shared.nemo.profiles import KAPWING, KLING
from shared.retry_after import parse_retry_after

CASES = [
    # status, body, expected class, code
    (200, {"code": 0, "data": {}}, None, None),
    (200, {"success": True, "data": {}}, None, None),
    (200, {"taskId": "render_1", "status": "pending"}, None, None),
    (200, {"code": 1001, "message": "token expired"}, e.TokenInvalid, 1001),
    (200, {"code": 1010, "msg": "token invalid"}, e.TokenInvalid, 1010),
    (401, {"code": 1011, "message": "invalid token"}, e.TokenInvalid, 1011),
    (401, {"detail": "Unauthorized"}, e.TokenInvalid, None),
    (200, {"code": 1002, "message": "session not found"}, e.SessionNotFound, 1002),
    (404, {"detail": "Session not found"}, e.SessionNotFound, None),
    (200, {"code": 2001, "message": "insufficient credits"}, e.OutOfCredits, 2001),
    (200, {"code": 4001, "message": "unsupported file type: .xyz"}, e.UnsupportedFileType, 4001),
    (413, {"code": 4002, "message": "file too large: a.mp4 > 20 MB"}, e.FileTooLarge, 4002),
    (413, {"message": "too big"}, e.FileTooLarge, None),
    (400, {"code": 400, "message": "X-Client-Id header is required"}, e.MissingClientId, 400),
    (400, {"success": False, "message": "draft is empty"}, e.EmptyDraft, None),
    (400, {"success": False, "message": "bad field"}, e.UpstreamRejected, None),
    (402, {"code": 402, "message": "free plan export blocked: missing headers"}, e.ExportBlocked, 402),
    (409, {"success": False, "code": 409, "message": "render id already exists"}, e.DuplicateRenderId, 409),
    (409, {"success": False, "message": "render not completed"}, e.RenderNotReady, None),
    (404, {"success": False, "message": "render not found"}, e.RenderNotFound, None),
    (429, {"code": 429, "message": "slow down"}, e.RateLimited, 429),
    (500, {"detail": "Internal Server Error"}, e.UpstreamUnavailable, None),
    (502, "<html>Bad Gateway</html>", e.UpstreamUnavailable, None),
    (503, None, e.UpstreamUnavailable, None),
    (200, {"code": 503, "message": "busy"}, e.UpstreamUnavailable, 503),
    (200, {"code": 7777, "message": "something new"}, e.UpstreamRejected, 7777),
    (200, {"success": False, "message": "nope"}, e.UpstreamRejected, None),
    (200, {"code": "1001", "message": "string code"}, e.TokenInvalid, 1001),
]


@pytest.mark.parametrize(("status", "body", "cls", "code"), CASES)
def test_error_from_reply(status, body, cls, code):
    err = e.error_from_reply(status, body)
    if cls is None:
        assert err is None
        return
    assert type(err) is cls
    assert err.code == code
    assert err.http_status == status
    assert err.retryable is cls.retryable
    assert err.user_message


@pytest.mark.parametrize(
    ("cls", "retryable"),
    [
        (e.TokenInvalid, True),
        (e.SessionNotFound, True),
        (e.RateLimited, True),
        (e.UpstreamUnavailable, True),
        (e.UpstreamConnectionError, True),
        (e.StreamFailed, True),
        (e.OutOfCredits, False),
        (e.UnsupportedFileType, False),
        (e.FileTooLarge, False),
        (e.MissingClientId, False),
        (e.ExportBlocked, False),
        (e.RenderNotFound, False),
        (e.DuplicateRenderId, False),
        (e.ProtocolError, False),
    ],
)
def test_tree_retryable_by_class(cls, retryable):
    assert cls.retryable is retryable
    assert issubclass(cls, e.RetryableError if retryable else e.NemoError)
    if not retryable and cls is not e.RenderNotFound:
        assert issubclass(cls, e.TerminalError)


def test_instance_can_override_retryable():
    err = e.TokenInvalid("cannot refresh", retryable=False)
    assert err.retryable is False
    assert e.TokenInvalid.retryable is True


@pytest.mark.parametrize(
    ("user_id", "url"),
    [
        ("anon_abc", "https://nemovideo.com/register?bind=anon_abc"),
        ("usr_1", None),
        (None, None),
        ("anon_a b", "https://nemovideo.com/register?bind=anon_a%20b"),
    ],
)
def test_out_of_credits_register_link(user_id, url):
    err = e.error_from_reply(200, {"code": 2001, "message": "insufficient credits"}, user_id=user_id)
    assert isinstance(err, e.OutOfCredits)
    assert err.register_url == url
    if url:
        assert url in err.user_message
    else:
        assert "top up" in err.user_message


def test_unsupported_type_lists_formats_of_the_profile():
    err = e.error_from_reply(200, {"code": 4001, "message": "unsupported file type: clip.xyz"}, profile=KLING)
    assert isinstance(err, e.UnsupportedFileType)
    assert "'.xyz'" in err.user_message
    for fmt in ("mp4", "jpg", "webp", "aac"):
        assert fmt in err.user_message


def test_too_large_names_the_limit():
    err = e.error_from_reply(200, {"code": 4002, "message": "file too large: big.mp4 > 20 MB"}, profile=KLING)
    assert isinstance(err, e.FileTooLarge)
    assert "20 MB" in err.user_message and "big.mp4" in err.user_message
    err = e.too_large("x.mov", 600 * 1024 * 1024, KAPWING)
    assert "600.0 MB" in err.user_message and "500 MB" in err.user_message


def test_retry_after_seconds_and_http_date():
    err = e.error_from_reply(429, {"message": "slow"}, {"Retry-After": "12"})
    assert err.retry_after == 12.0
    now = time.time()
    at = datetime.fromtimestamp(now, UTC)
    date = email.utils.formatdate(now + 60, usegmt=True)
    assert 55 <= parse_retry_after(date, now=at) <= 61
    assert parse_retry_after("garbage") is None
    assert parse_retry_after(None) is None
    assert parse_retry_after(email.utils.formatdate(now - 60, usegmt=True), now=at) == 0.0
    assert e.error_from_reply(429, {}, {"retry-after": "1.5"}).retry_after == 1.5
    assert e.error_from_reply(429, {}).retry_after is None


@pytest.mark.parametrize(
    "text",
    ["token nmv_usr_SECRET123 rejected", "Authorization: Bearer abc.def-ghi", "bad token sekrit-value"],
)
def test_messages_never_carry_tokens(text):
    err = e.error_from_reply(401, {"message": text})
    assert "SECRET123" not in str(err) and "abc.def" not in str(err)
    err = e.UpstreamRejected(text, user_message=text)
    for shown in (str(err), err.user_message, repr(err)):
        assert "SECRET123" not in shown and "abc.def-ghi" not in shown
    assert "sekrit-value" not in e.redact(text, ["sekrit-value"])


def test_str_shows_code_and_status():
    err = e.error_from_reply(401, {"code": 1011, "message": "invalid token"})
    assert str(err) == "invalid token (code=1011 http=401)"
    assert "TokenInvalid" in repr(err)
    assert str(e.NemoError("plain")) == "plain"


def test_connection_error_carries_partial():
    err = e.UpstreamConnectionError("dropped", partial=None)
    assert err.partial is None and err.retryable


def test_out_of_credits_for_user():
    err = e.OutOfCredits("insufficient credits", code=2001, http_status=200)
    assert err.register_url is None and err.for_user(None) is err
    bound = err.for_user("anon_7")
    assert bound.register_url == "https://nemovideo.com/register?bind=anon_7" and bound.code == 2001
    assert bound.for_user("anon_7") is bound
