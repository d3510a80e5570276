"""A finished render's bytes: a valid MP4 from the download endpoint and the output URL, ranges, large files,
the sha256 under ``/_sim/``, and the bad cases (expired link, both dead, an HTML page instead of a video)."""

from __future__ import annotations

import hashlib
import random
import struct
from typing import Any

import httpx
import pytest

from services.nemo_sim.mp4 import CHUNK, build_media
from tests.sim.upstream import Upstream
from tests.utils.sim_admin import SimAdmin
from tests.utils.waiting import wait_until

CLIP = {"s": 0, "d": 7500, "n": "clip", "src": "/mnt/userdata/a.mp4"}
DRAFT = {"t": [{"tt": 0, "n": "Video", "sg": [CLIP]}], "d": 7500, "m": {"title": "T", "width": 720, "height": 1280}}
CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"dinf", b"udta"}


def boxes(data: bytes, start: int = 0, end: int | None = None) -> list[tuple[bytes, int, int]]:
    """(type, payload start, box end) of the boxes in ``data[start:end]``, checked to tile it exactly."""
    end = len(data) if end is None else end
    found, at = [], start
    while at < end:
        size, kind = struct.unpack(">I4s", data[at : at + 8])
        header = 8
        if size == 1:
            size, header = struct.unpack(">Q", data[at + 8 : at + 16])[0], 16
        assert size >= header and at + size <= end, (kind, size)
        found.append((kind, at + header, at + size))
        at += size
    assert at == end
    return found


def find(data: bytes, path: list[bytes]) -> tuple[int, int]:
    start, end = 0, len(data)
    for kind in path:
        start, end = next((s, e) for k, s, e in boxes(data, start, end) if k == kind)
    return start, end


def mp4_facts(data: bytes) -> dict[str, Any]:
    """Top-level box order, mvhd duration (s), the sample's offset and size, the track's size."""
    top = [k for k, _, _ in boxes(data)]
    mvhd, _ = find(data, [b"moov", b"mvhd"])
    timescale, duration = struct.unpack(">II", data[mvhd + 12 : mvhd + 20])
    stsz, _ = find(data, [b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsz"])
    stco, _ = find(data, [b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stco"])
    _, tkhd_end = find(data, [b"moov", b"trak", b"tkhd"])
    width, height = struct.unpack(">II", data[tkhd_end - 8 : tkhd_end])
    mdat_start, mdat_end = find(data, [b"mdat"])
    return {
        "top": top,
        "duration": duration / timescale,
        "sample_size": struct.unpack(">I", data[stsz + 12 : stsz + 16])[0],
        "sample_offset": struct.unpack(">I", data[stco + 8 : stco + 12])[0],
        "mdat": (mdat_start, mdat_end),
        "size": (width >> 16, height >> 16),
    }


def completed(sim: SimAdmin, up: Upstream, sid: str, render_id: str, draft: Any = DRAFT) -> dict[str, Any]:
    """Submit and wait for completion; the status in shape B (url, duration, size)."""
    sim.configure(render_shape="B")
    assert up.submit(render_id, sid, draft).json()["success"] is True
    return wait_until(lambda: (doc := up.render_status(render_id).json())["status"] == "completed" and doc)


def download(up: Upstream, render_id: str, **headers: str) -> httpx.Response:
    return up.http.get(f"/api/render/proxy/{render_id}/download", headers={**up.headers(), **headers})


def test_a_valid_mp4_matching_the_status(sim: SimAdmin, up: Upstream, sid: str) -> None:
    sim.configure(render_seconds=10.0)
    doc = completed(sim, up, sid, "render_mp4")
    body = download(up, "render_mp4")
    assert body.status_code == 200 and body.headers["content-type"] == "video/mp4"
    data = body.content
    facts = mp4_facts(data)
    assert facts["top"] == [b"ftyp", b"moov", b"mdat"]
    assert facts["duration"] == doc["output"]["duration"] == 7.5
    assert len(data) == doc["output"]["size"] == int(body.headers["content-length"])
    assert facts["sample_offset"] == facts["mdat"][0] and facts["sample_size"] == facts["mdat"][1] - facts["mdat"][0]
    assert facts["size"] == (720, 1280)
    via_url = httpx.get(doc["output"]["url"])  # no token: a CDN link
    assert via_url.status_code == 200 and via_url.content == data
    view = sim.render("render_mp4")["output"]
    assert view == {"size": len(data), "duration": 7.5, "sha256": hashlib.sha256(data).hexdigest()}
    assert sim.render_sha256("render_mp4") == view["sha256"]


def test_each_render_has_its_own_bytes(sim: SimAdmin, up: Upstream, sid: str) -> None:
    sim.configure(render_seconds=0.0)
    first, second = completed(sim, up, sid, "render_one"), completed(sim, up, sid, "render_two")
    assert httpx.get(first["output"]["url"]).content != httpx.get(second["output"]["url"]).content
    assert sim.render_sha256("render_one") != sim.render_sha256("render_two")


def test_range_and_head_on_the_output_url(sim: SimAdmin, up: Upstream, sid: str) -> None:
    sim.configure(render_seconds=0.0, output_bytes=300_000)
    url = completed(sim, up, sid, "render_r")["output"]["url"]
    whole = httpx.get(url).content
    assert len(whole) == 300_000 and whole[4:8] == b"ftyp"
    part = httpx.get(url, headers={"Range": "bytes=100-70099"})
    assert part.status_code == 206 and part.content == whole[100:70100]
    assert part.headers["content-range"] == "bytes 100-70099/300000" and part.headers["content-length"] == "70000"
    assert httpx.get(url, headers={"Range": "bytes=299000-"}).content == whole[299000:]
    assert httpx.get(url, headers={"Range": "bytes=-10"}).content == whole[-10:]
    past = httpx.get(url, headers={"Range": "bytes=300000-"})
    assert past.status_code == 416 and past.headers["content-range"] == "bytes */300000"
    head = httpx.head(url)
    assert head.status_code == 200 and head.headers["content-length"] == "300000" and head.content == b""
    assert head.headers["accept-ranges"] == "bytes" and head.headers["etag"] == part.headers["etag"]
    ranged = download(up, "render_r", Range="bytes=0-7")  # the download endpoint honours ranges too
    assert ranged.status_code == 206 and ranged.content == whole[:8]


def test_large_file_streams_with_matching_sha(sim: SimAdmin, up: Upstream, sid: str) -> None:
    size = 40_000_000
    sim.configure(render_seconds=0.0, output_bytes=size)
    url = completed(sim, up, sid, "render_big")["output"]["url"]
    digest, count, head = hashlib.sha256(), 0, b""
    with httpx.stream("GET", url, timeout=60) as resp:
        assert resp.headers["content-length"] == str(size)
        for piece in resp.iter_bytes():
            head = head or piece[:4096]
            digest.update(piece)
            count += len(piece)
    assert count == size and digest.hexdigest() == sim.render_sha256("render_big")
    assert head[4:8] == b"ftyp"
    tail = httpx.get(url, headers={"Range": f"bytes={size - CHUNK - 5}-{size - CHUNK + 4}"})
    assert len(tail.content) == 10
    sim.configure(output_bytes=0)  # a config change later does not change a submitted render's file
    assert httpx.head(url).headers["content-length"] == str(size)


def test_output_url_expired_while_download_works(sim: SimAdmin, up: Upstream, sid: str) -> None:
    sim.configure(render_seconds=0.0)
    url = completed(sim, up, sid, "render_x")["output"]["url"]
    good = download(up, "render_x").content
    for link, status, code in (("expired_403", 403, "AccessDenied"), ("expired_404", 404, "NoSuchKey")):
        sim.configure(output_link=link)
        dead = httpx.get(url)
        assert dead.status_code == status and f"<Code>{code}</Code>" in dead.text
        assert download(up, "render_x").content == good


def test_output_url_ttl(sim: SimAdmin, up: Upstream, sid: str) -> None:
    sim.configure(render_seconds=0.0, output_url_ttl_s=20.0)  # 0.2 s at 0.01
    url = completed(sim, up, sid, "render_ttl")["output"]["url"]
    wait_until(lambda: httpx.get(url).status_code == 403)
    assert download(up, "render_ttl").status_code == 200


def test_both_links_dead(sim: SimAdmin, up: Upstream, sid: str) -> None:
    sim.configure(render_seconds=0.0)
    url = completed(sim, up, sid, "render_dead")["output"]["url"]
    for gone, status in (("gone_404", 404), ("gone_410", 410)):
        sim.configure(output_link="expired_403", download_link=gone)
        assert httpx.get(url).status_code == 403
        resp = download(up, "render_dead")
        assert resp.status_code == status and resp.json()["success"] is False and resp.json()["message"]


def test_html_instead_of_a_video(sim: SimAdmin, up: Upstream, sid: str) -> None:
    sim.configure(render_seconds=0.0, output_body="html")
    url = completed(sim, up, sid, "render_html")["output"]["url"]
    for resp in (httpx.get(url), download(up, "render_html")):
        assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/html")
        assert b"ftyp" not in resp.content[:16] and b"<html>" in resp.content


def test_unsigned_or_unfinished_output_url(sim: SimAdmin, up: Upstream, sid: str) -> None:
    sim.configure(render_seconds=0.0)
    url = completed(sim, up, sid, "render_sig")["output"]["url"]
    assert httpx.get(url.split("?")[0]).status_code == 403
    assert httpx.get(url.replace("render_sig", "render_nope")).status_code == 403
    assert sim.endpoint_count("render_output") == 2


@pytest.mark.parametrize("output_bytes", [0, 1, 5000, 3 * CHUNK + 17])
def test_ranges_are_slices_of_the_whole(output_bytes: int) -> None:
    media = build_media("render_u", "1", 2, DRAFT, 1.7e9, output_bytes)
    whole = media.read()
    assert len(whole) == media.size and (output_bytes < 1000 or media.size == output_bytes)
    assert hashlib.sha256(whole).hexdigest() == media.sha256()
    rng = random.Random(output_bytes)
    for _ in range(100):
        start = rng.randrange(0, media.size)
        stop = rng.randrange(start, media.size + 5)
        assert b"".join(media.iter_range(start, stop)) == whole[start:stop]
    again = build_media("render_u", "1", 2, DRAFT, 1.7e9, output_bytes)
    assert again.read() == whole  # deterministic


def test_payload_chunks_all_differ() -> None:
    media = build_media("render_c", "1", 1, DRAFT, 1.7e9, 20 * CHUNK)
    payload = media.read()[len(media.head) :]
    chunks = [payload[i : i + CHUNK] for i in range(0, len(payload), CHUNK)]
    assert len(set(chunks)) == len(chunks)
