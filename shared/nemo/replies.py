"""Turning successful ``{"code":0,"data":{...}}`` replies into models; ``ProtocolError`` when a field is missing."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.nemo.errors import ProtocolError
from shared.nemo.render_status import parse_time
from shared.nemo.wire import AnonymousToken, Credits, SessionInfo, SessionState, UploadedFile


def data_of(body: Any) -> Mapping[str, Any]:
    data = body.get("data") if isinstance(body, Mapping) else None
    if not isinstance(data, Mapping):
        raise ProtocolError("reply without a data object")
    return data


def _text(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if value is None or value == "":
        raise ProtocolError(f"reply without {key!r}")
    return str(value)


def _int(value: Any, default: int = 0) -> int:
    if isinstance(value, bool) or value is None:
        return default
    try:
        return int(float(value))
    except (TypeError, ValueError):
        raise ProtocolError(f"not a number: {value!r}") from None


def _opt_float(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _opt_int(value: Any) -> int | None:
    number = _opt_float(value)
    return int(number) if number is not None else None


def parse_anonymous_token(body: Any) -> AnonymousToken:
    data = data_of(body)
    expires = parse_time(data.get("expires_at") or data.get("expiresAt"))
    return AnonymousToken(
        token=_text(data, "token"),
        user_id=_text(data, "user_id"),
        expires_at=expires or datetime.now(UTC) + timedelta(days=7),  # the documented lifetime
        credits=_int(data.get("credits")),
    )


def parse_session(body: Any) -> SessionInfo:
    data = data_of(body)
    return SessionInfo(
        task_id=str(data.get("task_id") or ""),
        session_id=_text(data, "session_id"),
        user_id=str(data.get("user_id") or ""),
    )


def _uploaded(item: Any) -> UploadedFile:
    if not isinstance(item, Mapping):
        raise ProtocolError("upload reply lists a file that is not an object")
    return UploadedFile(
        filename=str(item.get("filename") or ""),
        file_type=str(item.get("file_type") or ""),
        cdn_url=str(item.get("cdn_url") or ""),
        duration=_opt_float(item.get("duration")),
        width=_opt_int(item.get("width")),
        height=_opt_int(item.get("height")),
        fps=_opt_float(item.get("fps")),
        hash=str(item["hash"]) if item.get("hash") else None,
    )


def parse_uploaded(body: Any) -> list[UploadedFile]:
    files = data_of(body).get("files")
    if not isinstance(files, list):
        raise ProtocolError("upload reply without a files list")
    return [_uploaded(item) for item in files]


def parse_state(body: Any, session_id: str) -> SessionState:
    data = data_of(body)
    state = data.get("state") if isinstance(data.get("state"), Mapping) else {}
    draft = state.get("draft")
    canvas = state.get("canvas_config")
    infos = state.get("video_infos")
    return SessionState(
        session_id=str(data.get("session_id") or session_id),
        task_id=str(data["task_id"]) if data.get("task_id") else None,
        draft=dict(draft) if isinstance(draft, Mapping) else None,
        video_infos=list(infos) if isinstance(infos, list) else [],
        generated_media=state.get("generated_media"),
        canvas_config=dict(canvas) if isinstance(canvas, Mapping) else None,
        raw=dict(data),
    )


def parse_credits(body: Any) -> Credits:
    data = data_of(body)
    available = _int(data.get("available"))
    frozen = _int(data.get("frozen"))
    return Credits(available=available, frozen=frozen, total=_int(data.get("total"), available + frozen))
