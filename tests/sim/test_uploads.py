"""Uploads: multipart streamed to disk, JSON URLs, the per-profile type and size limits."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from shared.nemo.profiles import KLING, MB
from tests.sim.upstream import Upstream
from tests.utils.sim_admin import SimAdmin


def _sparse_file(path: Path, size: int) -> Path:
    with path.open("wb") as f:
        f.write(b"head")
        f.seek(size - 4)
        f.write(b"tail")
    return path


def test_multipart_upload_shape_and_state(sim: SimAdmin, up: Upstream, sid: str) -> None:
    clip, still = b"\x00\x01" * 5000, b"\x89PNG" * 100
    resp = up.upload(sid, [("city.mp4", clip), ("cover.png", still)])
    body = resp.json()
    assert resp.status_code == 200 and body["code"] == 0, body
    assert body["data"]["session_state_applied"] is True
    video, image = body["data"]["files"]
    assert set(video) == {"filename", "file_type", "cdn_url", "duration", "width", "height", "fps", "hash"}
    assert (video["filename"], video["file_type"], image["file_type"]) == ("city.mp4", "video", "image")
    assert video["hash"] == hashlib.sha256(clip).hexdigest()
    assert video["duration"] > 0 and video["fps"] == 30
    infos = up.state(sid).json()["data"]["state"]["video_infos"]
    assert [i["filename"] for i in infos] == ["city.mp4", "cover.png"]
    served = up.http.get(video["cdn_url"])
    assert served.status_code == 200 and served.content == clip
    files = sim.session(sid)["files"]
    assert files[0] == {
        "filename": "city.mp4",
        "size": len(clip),
        "sha256": video["hash"],
        "source": "upload",
    }


def test_uploaded_files_feed_the_agent(sim: SimAdmin, up: Upstream, sid: str) -> None:
    up.upload(sid, [("beach.mov", b"x" * 100), ("song.mp3", b"y" * 100)])
    up.message(sid, "make a summer video")
    draft = up.draft(sid)
    srcs = {seg.get("src") for track in draft["t"] for seg in track["sg"]}
    assert {"/mnt/userdata/beach.mov", "/mnt/userdata/song.mp3"} <= srcs


def test_url_upload_is_not_fetched(sim: SimAdmin, up: Upstream, sid: str) -> None:
    resp = up.upload_urls(sid, ["https://cdn.example.invalid/path/My%20Clip.MP4?x=1", "http://h.invalid/a/b.wav"])
    body = resp.json()
    assert body["code"] == 0, body
    first, second = body["data"]["files"]
    assert (first["filename"], first["file_type"]) == ("My Clip.MP4", "video")
    assert second["file_type"] == "audio"
    assert len(up.state(sid).json()["data"]["state"]["video_infos"]) == 2


@pytest.mark.parametrize("name", ["notes.txt", "noext", "movie.flv"])
def test_wrong_extension_is_4001(sim: SimAdmin, up: Upstream, sid: str, name: str) -> None:
    resp = up.upload(sid, [("ok.mp4", b"fine"), (name, b"data")])
    body = resp.json()
    assert resp.status_code == 200 and body["code"] == 4001
    assert body["message"].startswith("unsupported file type: ") and "accepted: aac, avi," in body["message"]
    assert up.state(sid).json()["data"]["state"]["video_infos"] == []  # nothing half-applied


def test_wrong_extension_by_url_is_4001(sim: SimAdmin, up: Upstream, sid: str) -> None:
    body = up.upload_urls(sid, ["https://x.invalid/doc.pdf"]).json()
    assert body["code"] == 4001 and ".pdf" in body["message"]


def test_21mb_refused_under_kling_not_kapwing(sim: SimAdmin, sid: str, up: Upstream, tmp_path: Path) -> None:
    big = _sparse_file(tmp_path / "big.mp4", 21 * MB)
    kling = Upstream(sim.base_url, profile=KLING, token=up.token)
    with big.open("rb") as f:  # httpx streams the open file from disk
        refused = kling.upload(sid, [("big.mp4", f)])
    body = refused.json()
    assert refused.status_code == 200 and body["code"] == 4002
    assert body["message"] == "file too large: big.mp4 is 21.0 MB > 20 MB"
    assert sim.session(sid)["files"] == []
    with big.open("rb") as f:
        accepted = up.upload(sid, [("big.mp4", f)])
    assert accepted.json()["code"] == 0
    expected = hashlib.sha256(big.read_bytes()).hexdigest()
    assert accepted.json()["data"]["files"][0]["hash"] == expected
    assert sim.session(sid)["files"][0]["size"] == 21 * MB


def test_unknown_source_gets_backend_limits(sim: SimAdmin, up: Upstream, sid: str) -> None:
    headers = {**up.headers(), "X-Skill-Source": "some-other-skill"}
    resp = up.http.post(f"/api/upload-video/nemo_agent/me/{sid}", headers=headers, files=[("files", ("a.webm", b"z"))])
    assert resp.json()["code"] == 0


def test_upload_errors(sim: SimAdmin, up: Upstream, sid: str) -> None:
    assert up.upload("1111111111111111111", [("a.mp4", b"x")]).json() == {
        "code": 1002,
        "message": "session not found",
    }
    url = f"/api/upload-video/nemo_agent/me/{sid}"
    no_files = up.http.post(url, headers=up.headers(), data={"x": "1"}, files=[("other", ("a.mp4", b"x"))])
    assert no_files.status_code == 400 and no_files.json()["code"] == 400
    assert up.upload_urls(sid, []).status_code == 400
